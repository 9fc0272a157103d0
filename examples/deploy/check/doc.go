// Package check holds the tests of the deployment examples in its parent
// directory: the Kubernetes manifests decoded strictly into the API's own
// types, the environment and flags they pass checked against the daemon's
// help, the systemd unit verified by systemd-analyze, the git-sync variants'
// tree read through git-sync's link as it lays it out, and the
// container's capabilities tried on the python_script sandbox. It is a
// module of its own, so that the Kubernetes API types are no dependency of
// tasksync; make test runs it.
package check
