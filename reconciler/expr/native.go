package expr

import (
	"encoding/json"
	"reflect"
)

// anyType asks CEL for plain Go values: maps, lists and scalars.
var anyType = reflect.TypeFor[any]()

// jsonText renders maps and lists as JSON, other values as Go prints them.
func jsonText(v any) string {
	switch v.(type) {
	case map[string]any, []any, map[any]any:
		if b, err := json.Marshal(v); err == nil {
			return string(b)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	return string(b)
}
