package check

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// repo is the repository's root, relative to this directory.
const repo = "../../.."

// object is one decoded manifest document.
type object struct {
	file, kind, name string
	value            any
}

// decodeStrict decodes one document into the API type of its kind,
// refusing unknown fields, as kubectl apply --validate=strict would.
func decodeStrict(doc []byte) (kind, name string, v any, err error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return "", "", nil, err
	}
	switch meta.APIVersion + " " + meta.Kind {
	case "v1 Secret":
		v = &corev1.Secret{}
	case "v1 ConfigMap":
		v = &corev1.ConfigMap{}
	case "v1 Service":
		v = &corev1.Service{}
	case "apps/v1 Deployment":
		v = &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		v = &appsv1.StatefulSet{}
	case "policy/v1 PodDisruptionBudget":
		v = &policyv1.PodDisruptionBudget{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		v = &monitoringv1.ServiceMonitor{}
	default:
		return "", "", nil, fmt.Errorf("no type for %s %s", meta.APIVersion, meta.Kind)
	}
	// Case-sensitive and strict, as the API server decodes (encoding/json
	// would take targetport for targetPort).
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return "", "", nil, err
	}
	strict, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return "", "", nil, err
	}
	if len(strict) > 0 {
		return "", "", nil, errors.Join(strict...)
	}
	if meta.Metadata.Name == "" {
		return "", "", nil, fmt.Errorf("%s without metadata.name", meta.Kind)
	}
	return meta.Kind, meta.Metadata.Name, v, nil
}

// loadManifests decodes every document of the YAML files in dirs.
func loadManifests(t *testing.T, dirs ...string) []object {
	t.Helper()
	var out []object
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no manifests in %s: %v", dir, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
				if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
					continue
				}
				kind, name, v, err := decodeStrict([]byte(doc))
				if err != nil {
					t.Errorf("%s, document %d: %v", f, i+1, err)
					continue
				}
				out = append(out, object{file: f, kind: kind, name: name, value: v})
			}
		}
	}
	return out
}

// variants are the sets of manifests applied together.
var variants = map[string][]string{
	"git-sync":            {"../kubernetes/common", "../kubernetes/git-sync"},
	"configmap":           {"../kubernetes/common", "../kubernetes/configmap"},
	"self-hosted-inngest": {"../kubernetes/common", "../self-hosted-inngest"},
}

func find[T any](objs []object, kind, name string) *T {
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			if v, ok := o.value.(*T); ok {
				return v
			}
		}
	}
	return nil
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// podSpecs are the pod templates of the Deployments and StatefulSets.
func podSpecs(objs []object) map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for _, o := range objs {
		switch v := o.value.(type) {
		case *appsv1.Deployment:
			out[o.kind+"/"+o.name] = &v.Spec.Template
		case *appsv1.StatefulSet:
			out[o.kind+"/"+o.name] = &v.Spec.Template
		}
	}
	return out
}

// TestManifestsDecodeStrictly: every document of every variant decodes
// into its Kubernetes type with no unknown field, and the objects of a
// variant fit together: selectors select, references resolve, probes
// name ports that exist, the tasksync Deployment runs at least two
// replicas probed on /healthz and /readyz, with its tenants' secrets
// mounted at <secrets-dir>/<tenant>.
func TestManifestsDecodeStrictly(t *testing.T) {
	for name, dirs := range variants {
		t.Run(name, func(t *testing.T) {
			objs := loadManifests(t, dirs...)
			for key, tpl := range podSpecs(objs) {
				checkPod(t, objs, key, tpl)
			}
			for _, o := range objs {
				switch v := o.value.(type) {
				case *appsv1.Deployment:
					if v.Spec.Selector == nil || !matches(v.Spec.Selector.MatchLabels, v.Spec.Template.Labels) {
						t.Errorf("%s: Deployment %s: its selector does not select its pods", o.file, o.name)
					}
				case *appsv1.StatefulSet:
					if v.Spec.Selector == nil || !matches(v.Spec.Selector.MatchLabels, v.Spec.Template.Labels) {
						t.Errorf("%s: StatefulSet %s: its selector does not select its pods", o.file, o.name)
					}
				case *corev1.Service:
					checkService(t, objs, o, v)
				case *policyv1.PodDisruptionBudget:
					sel := map[string]string{}
					if v.Spec.Selector != nil {
						sel = v.Spec.Selector.MatchLabels
					}
					hit := false
					for _, tpl := range podSpecs(objs) {
						hit = hit || matches(sel, tpl.Labels)
					}
					if !hit {
						t.Errorf("%s: PodDisruptionBudget %s selects no pods", o.file, o.name)
					}
				case *monitoringv1.ServiceMonitor:
					hit := false
					for _, s := range objs {
						if svc, ok := s.value.(*corev1.Service); ok && matches(v.Spec.Selector.MatchLabels, svc.Labels) {
							for _, ep := range v.Spec.Endpoints {
								for _, p := range svc.Spec.Ports {
									hit = hit || p.Name == ep.Port
								}
								if ep.Path != "/metrics" {
									t.Errorf("ServiceMonitor %s scrapes %s, want /metrics", o.name, ep.Path)
								}
								if a := ep.Authorization; a == nil || a.Credentials == nil || !secretHas(objs, a.Credentials.Name, a.Credentials.Key) {
									t.Errorf("ServiceMonitor %s: no token from a Secret of the set", o.name)
								}
							}
						}
					}
					if !hit {
						t.Errorf("ServiceMonitor %s scrapes no port of a Service", o.name)
					}
				}
			}
			dep := find[appsv1.Deployment](objs, "Deployment", "tasksync")
			if dep == nil {
				t.Fatal("no Deployment tasksync")
			}
			if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
				t.Errorf("Deployment tasksync: %v replicas, want at least 2", dep.Spec.Replicas)
			}
			c := tasksyncContainer(t, &dep.Spec.Template)
			for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
				if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want {
					t.Errorf("tasksync: a probe is not on %s", want)
				}
			}
			secretsDir := envValue(c, "TASKSYNC_SECRETS_DIR")
			for _, tenant := range []string{"acme", "globex"} {
				if !mountsSecret(&dep.Spec.Template, c, secretsDir+"/"+tenant) {
					t.Errorf("tasksync: no secret volume at %s/%s", secretsDir, tenant)
				}
			}
		})
	}
	if _, ok := variants["git-sync"]; ok {
		objs := loadManifests(t, variants["git-sync"]...)
		dep := find[appsv1.Deployment](objs, "Deployment", "tasksync")
		if dep == nil || !slices.ContainsFunc(dep.Spec.Template.Spec.InitContainers, func(c corev1.Container) bool {
			return strings.Contains(c.Image, "git-sync") && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		}) {
			t.Error("git-sync variant: no git-sync sidecar")
		}
	}
}

func secretHas(objs []object, name, key string) bool {
	s := find[corev1.Secret](objs, "Secret", name)
	if s == nil {
		return false
	}
	_, inString := s.StringData[key]
	_, inData := s.Data[key]
	return inString || inData
}

func checkService(t *testing.T, objs []object, o object, svc *corev1.Service) {
	t.Helper()
	for _, tpl := range podSpecs(objs) {
		if !matches(svc.Spec.Selector, tpl.Labels) {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.Type == intstr.String && !podHasPort(tpl, p.TargetPort.StrVal) {
				t.Errorf("%s: Service %s targets port %q, which its pods lack", o.file, o.name, p.TargetPort.StrVal)
			}
		}
		return
	}
	t.Errorf("%s: Service %s selects no pods", o.file, o.name)
}

func podHasPort(tpl *corev1.PodTemplateSpec, name string) bool {
	for _, c := range slices.Concat(tpl.Spec.InitContainers, tpl.Spec.Containers) {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

// checkPod checks a pod template's references: the volumes its mounts
// name, the Secrets and ConfigMaps of its volumes and environment (with
// their keys), the ports its probes name, the $(VAR)s of its commands.
func checkPod(t *testing.T, objs []object, key string, tpl *corev1.PodTemplateSpec) {
	t.Helper()
	vols := map[string]bool{}
	for _, v := range tpl.Spec.Volumes {
		vols[v.Name] = true
		switch {
		case v.Secret != nil:
			s := find[corev1.Secret](objs, "Secret", v.Secret.SecretName)
			if s == nil {
				t.Errorf("%s: volume %s: no Secret %s", key, v.Name, v.Secret.SecretName)
			}
			for _, it := range v.Secret.Items {
				if !secretHas(objs, v.Secret.SecretName, it.Key) {
					t.Errorf("%s: volume %s: Secret %s has no key %s", key, v.Name, v.Secret.SecretName, it.Key)
				}
			}
		case v.ConfigMap != nil:
			if find[corev1.ConfigMap](objs, "ConfigMap", v.ConfigMap.Name) == nil {
				t.Errorf("%s: volume %s: no ConfigMap %s", key, v.Name, v.ConfigMap.Name)
			}
		}
	}
	if sts := find[appsv1.StatefulSet](objs, "StatefulSet", strings.TrimPrefix(key, "StatefulSet/")); sts != nil {
		for _, c := range sts.Spec.VolumeClaimTemplates {
			vols[c.Name] = true
		}
	}
	for _, c := range slices.Concat(tpl.Spec.InitContainers, tpl.Spec.Containers) {
		env := map[string]bool{}
		for _, e := range c.Env {
			env[e.Name] = true
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && !(r.SecretKeyRef.Optional != nil && *r.SecretKeyRef.Optional) && !secretHas(objs, r.SecretKeyRef.Name, r.SecretKeyRef.Key) {
				t.Errorf("%s, container %s: $%s from Secret %s key %s, which the set lacks", key, c.Name, e.Name, r.SecretKeyRef.Name, r.SecretKeyRef.Key)
			}
		}
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				t.Errorf("%s, container %s: mounts volume %s, which the pod lacks", key, c.Name, m.Name)
			}
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.Type == intstr.String && !podHasPort(tpl, p.HTTPGet.Port.StrVal) {
				t.Errorf("%s, container %s: a probe on port %q, which it lacks", key, c.Name, p.HTTPGet.Port.StrVal)
			}
		}
		for _, arg := range slices.Concat(c.Command, c.Args) {
			for _, m := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(arg, -1) {
				if !env[m[1]] {
					t.Errorf("%s, container %s: %s names $(%s), which its environment lacks", key, c.Name, arg, m[1])
				}
			}
		}
	}
}

func tasksyncContainer(t *testing.T, tpl *corev1.PodTemplateSpec) *corev1.Container {
	t.Helper()
	for i := range tpl.Spec.Containers {
		if tpl.Spec.Containers[i].Name == "tasksync" {
			return &tpl.Spec.Containers[i]
		}
	}
	t.Fatal("no container tasksync")
	return nil
}

func envValue(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func mountsSecret(tpl *corev1.PodTemplateSpec, c *corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for _, v := range tpl.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return true
			}
		}
	}
	return false
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// tasksyncBin builds the tasksync binary once.
func tasksyncBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deploycheck")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "tasksync")
		out, err := exec.Command("go", "build", "-C", repo, "-o", binPath, "./cmd/tasksync").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// runHelp is what tasksync run -h accepts: its flags and every
// environment variable it names (a family as a prefix).
func runHelp(t *testing.T) (flags map[string]bool, envs map[string]bool, families []string) {
	t.Helper()
	out, err := exec.Command(tasksyncBin(t), "run", "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("tasksync run -h: %v\n%s", err, out)
	}
	flags, envs = map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := regexp.MustCompile(`^  --([a-z0-9-]+)`).FindStringSubmatch(line); m != nil {
			flags[m[1]] = true
		}
		for _, m := range regexp.MustCompile(`\$([A-Z][A-Z0-9_]*)(<NAME>)?`).FindAllStringSubmatch(line, -1) {
			if m[2] != "" {
				families = append(families, m[1])
			} else {
				envs[m[1]] = true
			}
		}
	}
	if len(flags) < 10 || !envs["INNGEST_SIGNING_KEY"] || !envs["DATABASE_URL"] {
		t.Fatalf("tasksync run -h names too little:\n%s", out)
	}
	return flags, envs, families
}

// checkDaemonEnv checks that the daemon accepts each variable and each
// argument given to it.
func checkDaemonEnv(t *testing.T, where string, env map[string]string, args []string) {
	t.Helper()
	flags, envs, families := runHelp(t)
	for name := range env {
		if !envs[name] && !slices.ContainsFunc(families, func(f string) bool { return strings.HasPrefix(name, f) }) {
			t.Errorf("%s: $%s is no variable tasksync run reads (tasksync run -h)", where, name)
		}
	}
	if len(args) == 0 || args[0] != "run" {
		t.Errorf("%s: runs tasksync %q, want run", where, args)
		return
	}
	for _, a := range args[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !flags[name] {
			t.Errorf("%s: argument %q is no flag of tasksync run", where, a)
		}
	}
	// The daemon parses them: a wrong value is a usage error (exit 2)
	// before it reaches for the database.
	cmd := exec.Command(tasksyncBin(t), args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		if k != "DATABASE_URL" && !strings.HasPrefix(k, "INNGEST_") && !strings.HasSuffix(k, "_DIR") && !strings.HasSuffix(k, "_FILE") {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	out, _ := cmd.CombinedOutput()
	if bytes.Contains(out, []byte("invalid value")) {
		t.Errorf("%s: tasksync refuses a value: %s", where, out)
	}
}

// TestDaemonAcceptsTheEnvironment: every variable and argument the
// manifests, the Dockerfile and the systemd files pass to tasksync is one
// tasksync run accepts (tasksync run -h), with values it parses.
func TestDaemonAcceptsTheEnvironment(t *testing.T) {
	for name, dirs := range variants {
		objs := loadManifests(t, dirs...)
		dep := find[appsv1.Deployment](objs, "Deployment", "tasksync")
		if dep == nil {
			t.Fatalf("%s: no Deployment tasksync", name)
		}
		c := tasksyncContainer(t, &dep.Spec.Template)
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		checkDaemonEnv(t, name, env, slices.Concat(c.Command, c.Args))
	}

	df := dockerfile(t)
	checkDaemonEnv(t, "Dockerfile", df.env, df.cmd)

	env := envFile(t, "../systemd/tasksync.env")
	unit := readUnit(t)
	exec := strings.Fields(unit["ExecStart"])
	if len(exec) < 2 || exec[0] != "/usr/local/bin/tasksync" {
		t.Fatalf("ExecStart=%s", unit["ExecStart"])
	}
	checkDaemonEnv(t, "systemd", env, exec[1:])
}

func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not NAME=value", path, line)
		}
		env[k] = v
	}
	return env
}

// readUnit reads the [Service] settings of the unit (the last of each).
func readUnit(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../systemd/tasksync.service")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			out[k] = v
		}
	}
	return out
}

type dockerfileInfo struct {
	stages  []string
	env     map[string]string
	cmd     []string
	entry   string
	copies  []string
	expose  string
	install string
}

func dockerfile(t *testing.T) dockerfileInfo {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	d := dockerfileInfo{env: map[string]string{}}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			d.stages = append(d.stages, rest)
			d.env = map[string]string{} // the runtime's are the last stage's
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				d.env[k] = v
			}
		case "CMD":
			d.cmd = jsonArray(t, rest)
		case "ENTRYPOINT":
			e := jsonArray(t, rest)
			d.entry = strings.Join(e, " ")
		case "COPY":
			if !strings.HasPrefix(rest, "--from") {
				f := strings.Fields(rest)
				d.copies = append(d.copies, f[:len(f)-1]...)
			}
		case "EXPOSE":
			d.expose = rest
		case "RUN":
			if strings.Contains(rest, "apt-get install") {
				d.install = rest
			}
		}
	}
	return d
}

func jsonArray(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	if err := yaml.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("Dockerfile: %q is not an exec-form array: %v", s, err)
	}
	return out
}

// TestDockerfile: two stages; the build copies every directory the
// binary's packages and embedded files come from; the runtime has
// /usr/bin/python3 (python3-minimal), runs tasksync run and exposes the
// port it listens on.
func TestDockerfile(t *testing.T) {
	d := dockerfile(t)
	if len(d.stages) < 2 || !strings.Contains(d.stages[0], " AS ") {
		t.Errorf("stages %q: want a build stage and a runtime stage", d.stages)
	}
	if !strings.Contains(d.install, "python3-minimal") || !strings.Contains(d.install, "--no-install-recommends") {
		t.Errorf("the runtime installs %q, want python3-minimal without recommends", d.install)
	}
	if d.entry != "/usr/local/bin/tasksync" || strings.Join(d.cmd, " ") != "run" {
		t.Errorf("ENTRYPOINT %q CMD %q, want tasksync run", d.entry, d.cmd)
	}
	if _, port, _ := strings.Cut(d.env["TASKSYNC_LISTEN"], ":"); port != d.expose {
		t.Errorf("EXPOSE %s, but TASKSYNC_LISTEN=%s", d.expose, d.env["TASKSYNC_LISTEN"])
	}
	out, err := exec.Command("go", "list", "-C", repo, "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/tasksync").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	root, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module of the cache
		}
		top := strings.Split(rel, string(filepath.Separator))[0]
		if !slices.Contains(d.copies, top) {
			t.Errorf("the build needs %s, which the Dockerfile does not copy (copies %q)", rel, d.copies)
		}
	}
}

// TestSystemdUnit: systemd-analyze verify accepts the unit without a
// word (an unknown or misspelt setting is only a warning to it), with
// ExecStart pointing at a built binary; its capabilities are the
// container's.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not installed (.ci/run installs it: the Debian package systemd): %v", err)
	}
	b, err := os.ReadFile("../systemd/tasksync.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	envPath, err := filepath.Abs("../systemd/tasksync.env")
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(b), "/usr/local/bin/tasksync", tasksyncBin(t))
	unit = strings.ReplaceAll(unit, "EnvironmentFile=/etc/tasksync/tasksync.env", "EnvironmentFile="+envPath)
	p := filepath.Join(dir, "tasksync.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", p).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// A unit with a misspelt setting is caught: the check is not blind.
	bad := filepath.Join(dir, "bad.service")
	if err := os.WriteFile(bad, []byte(strings.Replace(unit, "ProtectSystem=strict", "ProtectSistem=strict", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.CommandContext(ctx, analyze, "verify", bad).CombinedOutput(); len(bytes.TrimSpace(out)) == 0 {
		t.Error("systemd-analyze verify says nothing of a misspelt setting")
	}

	var caps []string
	for _, c := range strings.Fields(readUnit(t)["CapabilityBoundingSet"]) {
		caps = append(caps, strings.TrimPrefix(c, "CAP_"))
	}
	if want := containerCaps(t); !slices.Equal(sorted(caps), sorted(want)) {
		t.Errorf("the unit's capabilities %q differ from the container's %q", caps, want)
	}
	if readUnit(t)["Delegate"] != "yes" || readUnit(t)["NoNewPrivileges"] != "yes" {
		t.Error("the unit lacks Delegate=yes or NoNewPrivileges=yes")
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// containerCaps are the capabilities the tasksync container adds.
func containerCaps(t *testing.T) []string {
	t.Helper()
	objs := loadManifests(t, variants["git-sync"]...)
	dep := find[appsv1.Deployment](objs, "Deployment", "tasksync")
	if dep == nil {
		t.Fatal("no Deployment tasksync")
	}
	sc := tasksyncContainer(t, &dep.Spec.Template).SecurityContext
	if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Fatal("the tasksync container does not drop ALL capabilities")
	}
	var out []string
	for _, c := range sc.Capabilities.Add {
		out = append(out, string(c))
	}
	return out
}

// TestSandboxWithTheContainersCapabilities runs the python_script
// sandbox's own tests as root with no_new_privs and a bounding set of
// exactly the capabilities the manifests and the unit give the daemon:
// they are enough.
func TestSandboxWithTheContainersCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run as root: the check runs the sandbox as a root daemon does")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) is not installed: %v", err)
	}
	caps := containerCaps(t)
	bounding := "-all"
	for _, c := range caps {
		bounding += ",+" + strings.ToLower(c)
	}
	bin := filepath.Join(t.TempDir(), "executor.test")
	if out, err := exec.Command("go", "test", "-C", repo, "-c", "-o", bin, "./reconciler/executor").CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, setpriv, "--no-new-privs", "--bounding-set="+bounding, "--inh-caps=-all",
		bin, "-test.run", "^(TestSandboxRunsAScript|TestSandboxConfines|TestSandboxLimits|TestSandboxMasksPaths)$", "-test.count=1", "-test.v")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestSandboxLimits")) {
		t.Errorf("the sandbox with capabilities %s: %v\n%s", caps, err, out)
	}
}

// TestGitSyncTreeThroughTheLink: the git-sync variants give tasksync the
// tree through git-sync's link (GITSYNC_ROOT/GITSYNC_LINK/...), on the
// volume git-sync writes, with no hook copying it; and tasksync reads a
// tree laid out as git-sync lays it out through that path, then the next
// commit's after the link is swapped and the old worktree deleted.
func TestGitSyncTreeThroughTheLink(t *testing.T) {
	var dirs []string
	for _, variant := range []string{"git-sync", "self-hosted-inngest"} {
		objs := loadManifests(t, variants[variant]...)
		dep := find[appsv1.Deployment](objs, "Deployment", "tasksync")
		if dep == nil {
			t.Fatalf("%s: no Deployment tasksync", variant)
		}
		tpl := &dep.Spec.Template
		var sidecar *corev1.Container
		for i, c := range tpl.Spec.InitContainers {
			if strings.Contains(c.Image, "git-sync") {
				sidecar = &tpl.Spec.InitContainers[i]
			}
		}
		if sidecar == nil {
			t.Fatalf("%s: no git-sync sidecar", variant)
		}
		root, link := envValue(sidecar, "GITSYNC_ROOT"), envValue(sidecar, "GITSYNC_LINK")
		if root == "" || link == "" || strings.Contains(link, "/") {
			t.Errorf("%s: git-sync's GITSYNC_ROOT %q and GITSYNC_LINK %q: set both, the link a name", variant, root, link)
			continue
		}
		if hook := envValue(sidecar, "GITSYNC_EXECHOOK_COMMAND"); hook != "" {
			t.Errorf("%s: git-sync runs the hook %q: tasksync follows the link, no copy is needed", variant, hook)
		}
		c := tasksyncContainer(t, tpl)
		dir := envValue(c, "TASKSYNC_DIR")
		sub, ok := strings.CutPrefix(dir, root+"/"+link+"/")
		if !ok && dir != root+"/"+link {
			t.Errorf("%s: TASKSYNC_DIR %q is not a path through git-sync's link %s/%s", variant, dir, root, link)
		}
		volumeAt := func(c *corev1.Container, path string) (string, bool) {
			for _, m := range c.VolumeMounts {
				if m.MountPath == path {
					return m.Name, m.ReadOnly
				}
			}
			return "", false
		}
		gitVol, _ := volumeAt(sidecar, root)
		tasksyncVol, readOnly := volumeAt(c, root)
		if gitVol == "" || gitVol != tasksyncVol || !readOnly {
			t.Errorf("%s: tasksync does not mount git-sync's volume at %s read-only (git-sync %q, tasksync %q read-only %v)",
				variant, root, gitVol, tasksyncVol, readOnly)
		}
		if p := sidecar.StartupProbe; p == nil || p.Exec == nil || !slices.Contains(p.Exec.Command, dir) {
			t.Errorf("%s: git-sync's startup probe does not wait for %s", variant, dir)
		}
		dirs = append(dirs, sub)
	}
	if t.Failed() {
		return
	}
	if dirs[0] != "tasks.d" {
		t.Fatalf("the tree is %q in the repository, the test lays out tasks.d", dirs[0])
	}

	// git-sync's layout: ROOT/current -> .worktrees/<hash>; a sync checks
	// the next commit out into a new worktree, renames a new link over
	// current, then deletes the old worktree.
	root := t.TempDir()
	checkout := func(hash string, drop ...string) {
		t.Helper()
		wt := filepath.Join(root, ".worktrees", hash)
		if err := os.CopyFS(filepath.Join(wt, "tasks.d"), os.DirFS(filepath.Join(repo, "tasks.d"))); err != nil {
			t.Fatal(err)
		}
		for _, d := range drop {
			if err := os.RemoveAll(filepath.Join(wt, "tasks.d", d)); err != nil {
				t.Fatal(err)
			}
		}
		tmp := filepath.Join(root, "tmp-link")
		if err := os.Symlink(filepath.Join(".worktrees", hash), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(root, "current")); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(root, "current", "tasks.d")
	summary := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tasksyncBin(t), args...).Output()
		if err != nil {
			t.Fatalf("tasksync %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return lines[len(lines)-1]
	}
	checkout("1111111")
	direct := summary("validate", "--dir", filepath.Join(repo, "tasks.d"), filepath.Join(repo, "tasks.d"))
	if got := summary("validate", "--dir", dir, dir); got != direct {
		t.Errorf("the tree through the link reads as %q, the repository's as %q", got, direct)
	}
	checkout("2222222", "globex")
	if err := os.RemoveAll(filepath.Join(root, ".worktrees", "1111111")); err != nil {
		t.Fatal(err)
	}
	if got := summary("validate", "--dir", dir, dir); !strings.HasPrefix(got, "ok: 1 tenant") {
		t.Errorf("after the second commit: %q, want the one tenant left", got)
	}
}

// TestConfigMapTenantsValidate: the tenants' ConfigMaps of the ConfigMap
// variant, written out as Kubernetes mounts them, are a valid tree.
func TestConfigMapTenantsValidate(t *testing.T) {
	objs := loadManifests(t, variants["configmap"]...)
	dep := find[appsv1.Deployment](objs, "Deployment", "tasksync")
	if dep == nil {
		t.Fatal("no Deployment tasksync")
	}
	c := tasksyncContainer(t, &dep.Spec.Template)
	treeDir := envValue(c, "TASKSYNC_DIR")
	tree := t.TempDir()
	n := 0
	for _, m := range c.VolumeMounts {
		tenant, ok := strings.CutPrefix(m.MountPath, treeDir+"/")
		if !ok {
			continue
		}
		var cmName string
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
		cm := find[corev1.ConfigMap](objs, "ConfigMap", cmName)
		if cm == nil {
			t.Fatalf("mount %s: no ConfigMap", m.MountPath)
		}
		if err := os.MkdirAll(filepath.Join(tree, tenant), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range cm.Data {
			if err := os.WriteFile(filepath.Join(tree, tenant, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if n < 2 {
		t.Fatalf("%d definition files in the ConfigMaps", n)
	}
	out, err := exec.Command(tasksyncBin(t), "validate", "--dir", tree, tree).Output() // stdout: the summary (stderr says what the path is)
	if err != nil || !strings.HasPrefix(string(out), "ok: 2 tenants") {
		t.Errorf("tasksync validate: %v\n%s", err, out)
	}
}

// TestInngestStartFlags: the self-hosted server's command line takes only
// flags inngest start has (inngest start --help of the dev server build,
// the same binary).
func TestInngestStartFlags(t *testing.T) {
	bin := os.Getenv("TASKSYNC_INNGEST_BIN")
	if bin == "" {
		bin = filepath.Join(repo, "bin", "inngest")
	}
	help, err := exec.Command(bin, "start", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s start --help: %v (make inngest builds it, or set TASKSYNC_INNGEST_BIN)\n%s", bin, err, help)
	}
	objs := loadManifests(t, "../self-hosted-inngest")
	dep := find[appsv1.Deployment](objs, "Deployment", "inngest")
	if dep == nil {
		t.Fatal("no Deployment inngest")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	args := slices.Concat(c.Command, c.Args)
	if len(args) < 2 || args[0] != "inngest" || args[1] != "start" {
		t.Fatalf("inngest runs %q, want inngest start", args)
	}
	for _, a := range args[2:] {
		name, _, _ := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "--") || !bytes.Contains(help, []byte("   "+name+" ")) {
			t.Errorf("inngest start has no flag %s", name)
		}
	}
	for _, need := range []string{"--signing-key", "--event-key", "--postgres-uri", "--redis-uri"} {
		if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, need+"=") }) {
			t.Errorf("inngest start without %s", need)
		}
	}
}

// TestStrictDecodingIsStrict: a misspelt field, or one at the wrong
// level, fails the decoding.
func TestStrictDecodingIsStrict(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{name: http, port: 80, targetport: 8080}]}\n",
		"apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoints: [{port: http, bearerToken: x}]}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
	} {
		if _, _, _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("decoded without an error:\n%s", doc)
		}
	}
}
