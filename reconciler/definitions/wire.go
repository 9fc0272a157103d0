package definitions

import (
	"encoding/json"

	"github.com/riveredge/tasksync/reconciler"
)

// The decoders below fill the wire types straight from the JSON values the
// YAML converted to, which is several times cheaper than a JSON round
// trip. The schema has checked the types already; on a document it
// rejected they take what fits and leave the rest unset, so the semantic
// checks can still run.

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

func str(v any) string { s, _ := v.(string); return s }

func intPtr(v any) *int {
	n, ok := v.(json.Number)
	if !ok {
		return nil
	}
	i, err := n.Int64()
	if err != nil {
		return nil
	}
	x := int(i)
	return &x
}

func strMap(v any) map[string]string {
	m := obj(v)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		if s, ok := e.(string); ok {
			out[k] = s
		}
	}
	return out
}

func strList(v any) []string {
	l, _ := v.([]any)
	if l == nil {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func decodeDoc(v any) wireDoc {
	m := obj(v)
	md := obj(m["metadata"])
	sp := obj(m["spec"])
	w := wireDoc{
		APIVersion: str(m["apiVersion"]),
		Metadata: wireMetadata{
			Code:        str(md["code"]),
			Tenant:      str(md["tenant"]),
			Name:        str(md["name"]),
			Description: str(md["description"]),
			Labels:      strMap(md["labels"]),
		},
	}
	w.Kind = kindOf(str(m["kind"]))
	if b, ok := sp["active"].(bool); ok {
		w.Spec.Active = &b
	}
	tr := obj(sp["trigger"])
	w.Spec.Trigger = wireTrigger{
		Cron: str(tr["cron"]), Timezone: str(tr["timezone"]), Jitter: str(tr["jitter"]),
		Interval: str(tr["interval"]), At: str(tr["at"]), Event: str(tr["event"]), If: str(tr["if"]),
		CatchUp: str(tr["catchup"]), CatchUpWindow: str(tr["catchup_window"]),
	}
	w.Spec.Type = taskTypeOf(str(sp["type"]))
	w.Spec.Config = obj(sp["config"])
	w.Spec.Retries = intPtr(sp["retries"])
	w.Spec.RetryDelay = str(sp["retry_delay"])
	w.Spec.Concurrency = intPtr(sp["concurrency"])
	steps, _ := sp["steps"].([]any)
	for _, s := range steps {
		w.Spec.Steps = append(w.Spec.Steps, decodeStep(obj(s)))
	}
	return w
}

func decodeAPICall(m map[string]any) wireAPICall {
	return wireAPICall{
		Method:       str(m["method"]),
		URL:          str(m["url"]),
		Headers:      strMap(m["headers"]),
		Query:        strMap(m["query"]),
		Body:         m["body"],
		Timeout:      str(m["timeout"]),
		ExpectStatus: m["expect_status"],
	}
}

func decodePython(m map[string]any) wirePythonScript {
	w := wirePythonScript{
		Script:  str(m["script"]),
		File:    str(m["file"]),
		Args:    strList(m["args"]),
		Env:     strMap(m["env"]),
		Timeout: str(m["timeout"]),
	}
	if p := intPtr(m["memory_mb"]); p != nil {
		w.MemoryMB = *p
	}
	return w
}

func decodeStep(m map[string]any) wireStep {
	w := wireStep{
		ID:         str(m["id"]),
		If:         str(m["if"]),
		Sleep:      str(m["sleep"]),
		SleepUntil: str(m["sleep_until"]),
	}
	if a := obj(m["api_call"]); a != nil {
		c := decodeAPICall(a)
		w.APICall = &c
	}
	if p := obj(m["python_script"]); p != nil {
		c := decodePython(p)
		w.PythonScript = &c
	}
	if e := obj(m["wait_for_event"]); e != nil {
		w.WaitForEvent = &wireWait{Event: str(e["event"]), Match: str(e["match"]), If: str(e["if"]), Timeout: str(e["timeout"])}
	}
	if e := obj(m["send_event"]); e != nil {
		w.SendEvent = &wireSend{Name: str(e["name"]), Data: obj(e["data"])}
	}
	return w
}

func kindOf(s string) reconciler.Kind {
	switch k := reconciler.Kind(s); k {
	case reconciler.KindScheduledTask, reconciler.KindWorkflow, reconciler.KindTenantSettings:
		return k
	}
	return ""
}

func taskTypeOf(s string) reconciler.TaskType {
	switch t := reconciler.TaskType(s); t {
	case reconciler.TaskAPICall, reconciler.TaskPythonScript:
		return t
	}
	return ""
}
