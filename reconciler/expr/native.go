package expr

import (
	"encoding/json"
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
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

// measure is about the length of v as JSON text, counted up to just past
// limit: it stops walking lists and maps as soon as the count is over, so
// measuring a huge value costs no more than limit.
func measure(v ref.Val, limit int) int {
	n := 0
	var walk func(v ref.Val)
	walk = func(v ref.Val) {
		if n > limit {
			return
		}
		switch x := v.(type) {
		case types.String:
			n += len(x) + 2
		case types.Bytes:
			n += len(x)*4/3 + 4
		case traits.Mapper:
			n += 2
			for it := x.Iterator(); n <= limit && it.HasNext() == types.True; {
				k := it.Next()
				walk(k)
				n++ // the colon
				if val, ok := x.Find(k); ok {
					walk(val)
				}
				n++ // the comma
			}
		case traits.Lister:
			n += 2
			for it := x.Iterator(); n <= limit && it.HasNext() == types.True; {
				walk(it.Next())
				n++ // the comma
			}
		default:
			n += 24 // a number, a boolean, null, a timestamp
		}
	}
	walk(v)
	return n
}
