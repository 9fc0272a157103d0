package reconciler

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EventKey authenticates tasksync's own events (ManualRunEvent,
// FireEventName and the one-shot event): anyone holding the engine's
// event key can post an event with any tenant_id, code and version hash,
// and the hash is no secret (it is computable from the YAML). Each event
// tasksync sends carries a MAC over its name, tenant, code, version, fire
// and nonce (and, for a manual run, all of its data) under this key,
// which only the daemon's replicas and `tasksync trigger` hold (the store
// keeps it); a run checks it before anything else. The same key derives the events' ids, so that nobody
// can send an event under an id tasksync will use and make Inngest drop
// tasksync's own as a duplicate.
type EventKey struct{ key []byte }

// EventKeySize is the size of a generated key.
const EventKeySize = 32

// NewEventKey returns the key of the bytes k, at least EventKeySize long.
func NewEventKey(k []byte) (*EventKey, error) {
	if len(k) < EventKeySize {
		return nil, fmt.Errorf("the event key is %d bytes; at least %d are needed", len(k), EventKeySize)
	}
	return &EventKey{key: append([]byte(nil), k...)}, nil
}

// RandomEventKey returns a new random key: a process of its own (a test)
// that sends and checks its own events.
func RandomEventKey() *EventKey {
	k := make([]byte, EventKeySize)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return &EventKey{key: k}
}

// String never shows the key.
func (k *EventKey) String() string { return "EventKey(redacted)" }

// GoString never shows the key.
func (k *EventKey) GoString() string { return k.String() }

// The data keys of the MAC fields tasksync sets.
const (
	// EventMACKey holds the MAC (hex) of a tasksync event's data.
	EventMACKey = "mac"
	// EventNonceKey holds the nonce the MAC covers: the event's id for
	// scheduled events, "<unix ms>-<random>" for a manual run.
	EventNonceKey = "nonce"
)

// ManualEventTTL is how long after it was signed a manual run's event
// may start its run: a signed event seen somewhere starts nothing later
// than this, and within it starts no run but its first (the store
// claims its nonce, ErrManualRan).
const ManualEventTTL = time.Hour

// ErrUnsigned means a tasksync event does not carry a valid MAC: it was
// not sent by tasksync, whatever its tenant_id and hash say. It wraps
// ErrStale: such a run does not execute.
var ErrUnsigned error = unsignedError{}

type unsignedError struct{}

func (unsignedError) Error() string { return "not signed by tasksync" }
func (unsignedError) Unwrap() error { return ErrStale }

// ErrManualRan means a manual run's event already started a run: the
// same signed event, posted again, starts nothing. It wraps
// ErrAlreadyRan.
var ErrManualRan error = manualRanError{}

type manualRanError struct{}

func (manualRanError) Error() string { return "this manual run's event already started a run" }
func (manualRanError) Unwrap() error { return ErrAlreadyRan }

// ManualNonce is the nonce of a manual run's event (ManualRunEvent),
// which starts at most one run (the store claims it); "" for any other
// run.
func (in RunInput) ManualNonce() string {
	if name, _ := in.Event["name"].(string); name != ManualRunEvent {
		return ""
	}
	data, _ := in.Event["data"].(map[string]any)
	nonce, _ := data[EventNonceKey].(string)
	return nonce
}

// macFields are the data fields a MAC covers, in order.
var macFields = []string{"tenant_id", "code", "hash", "scheduled_for", "catchup", EventNonceKey, "then"}

// mac returns the MAC of an event of name with data.
func (k *EventKey) mac(name string, data map[string]any) []byte {
	h := hmac.New(sha256.New, k.key)
	h.Write([]byte("tasksync-event-v1\x00"))
	h.Write([]byte(name))
	for _, f := range macFields {
		h.Write([]byte{0})
		switch v := data[f].(type) {
		case string:
			h.Write([]byte("s" + strconv.Itoa(len(v)) + ":" + v))
		case bool:
			h.Write([]byte("b" + strconv.FormatBool(v)))
		case []string: // a catch-up's later fires, as signed
			h.Write([]byte("l" + strconv.Itoa(len(v))))
			for _, e := range v {
				h.Write([]byte(":" + strconv.Itoa(len(e)) + ":" + e))
			}
		case []any: // the same, as the event's JSON decodes
			h.Write([]byte("l" + strconv.Itoa(len(v))))
			for _, e := range v {
				s, _ := e.(string)
				h.Write([]byte(":" + strconv.Itoa(len(s)) + ":" + s))
			}
		default:
			h.Write([]byte("-"))
		}
	}
	if name == ManualRunEvent {
		// A manual run's data is the caller's too: all of it is covered.
		h.Write([]byte("\x00d"))
		h.Write(dataDigest(data))
	}
	return h.Sum(nil)
}

// dataDigest is the SHA-256 of the canonical JSON of data's fields but
// the MAC: the JSON of the data as it decodes into map[string]any (numbers
// as float64, as a run reads the event back from Inngest), whose keys
// json.Marshal sorts at every level. The signer and the run so digest the
// same bytes however the event's JSON was spaced, ordered or its numbers
// written on the way. Data that does not encode digests as nothing.
func dataDigest(data map[string]any) []byte {
	d := make(map[string]any, len(data))
	for k, v := range data {
		if k != EventMACKey {
			d[k] = v
		}
	}
	b, err := json.Marshal(d)
	if err == nil {
		var m map[string]any
		if err = json.Unmarshal(b, &m); err == nil {
			b, err = json.Marshal(m)
		}
	}
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// Sign sets the MAC of an event of name in data; a data without a nonce
// gets a fresh one ("<unix ms>-<random>").
func (k *EventKey) Sign(name string, data map[string]any) {
	if _, ok := data[EventNonceKey].(string); !ok {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		data[EventNonceKey] = strconv.FormatInt(time.Now().UnixMilli(), 10) + "-" + hex.EncodeToString(b)
	}
	data[EventMACKey] = hex.EncodeToString(k.mac(name, data))
}

// Verify reports whether data, an event of name's, carries a valid MAC
// under k. A nil key verifies nothing.
func (k *EventKey) Verify(name string, data map[string]any) bool {
	if k == nil {
		return false
	}
	s, _ := data[EventMACKey].(string)
	got, err := hex.DecodeString(s)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	return hmac.Equal(got, k.mac(name, data))
}

// ID derives an event id from parts: prefix, then a MAC of the parts, so
// that only a holder of the key can tell the id of an event tasksync
// will send.
func (k *EventKey) ID(prefix string, parts ...string) string {
	h := hmac.New(sha256.New, k.key)
	h.Write([]byte("tasksync-event-id-v1"))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return prefix + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// IsSignedEvent reports whether events of this name are tasksync's own,
// which carry a MAC. Inngest's own events (a cron's timer, a direct
// invocation, which its event API does not accept from outside) do not.
func IsSignedEvent(name string) bool {
	return name == ManualRunEvent || name == FireEventName || name == OneShotEventName
}

// OneShotEventName is the event that starts a one-shot (an `at`
// trigger) at its time.
const OneShotEventName = "tasksync/one-shot.due"

// CheckSigned returns an error wrapping ErrStale and ErrUnsigned when in's
// event is one of tasksync's own (IsSignedEvent) without a valid MAC
// under k, or one wrapping ErrStale when it is a manual run's signed
// more than ManualEventTTL before its run started (or ahead of it). The
// run's start is the time in its Inngest run id (a ULID), the same for
// every call of the run, so a workflow that sleeps past the hour goes
// on; without one, now. Other events pass. The error names no key, MAC
// or version.
func CheckSigned(k *EventKey, in RunInput, now time.Time) error {
	name, _ := in.Event["name"].(string)
	if !IsSignedEvent(name) {
		return nil
	}
	data, _ := in.Event["data"].(map[string]any)
	if !k.Verify(name, data) {
		return ErrUnsigned
	}
	if name == ManualRunEvent {
		nonce, _ := data[EventNonceKey].(string)
		ms, _, _ := strings.Cut(nonce, "-")
		t, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			return ErrUnsigned
		}
		if started, ok := ulidTime(in.RunID); ok {
			now = started
		}
		if d := now.Sub(time.UnixMilli(t)); d > ManualEventTTL || d < -OneShotSkew {
			return fmt.Errorf("%w: the manual run's event was signed at %s, more than %s ago", ErrStale,
				time.UnixMilli(t).UTC().Format(time.RFC3339), ManualEventTTL)
		}
	}
	return nil
}

// crockford is the alphabet of a ULID.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ulidTime is the time a ULID (an Inngest run id) was made: its first 10
// characters, 48 bits of Unix milliseconds.
func ulidTime(id string) (time.Time, bool) {
	if len(id) != 26 {
		return time.Time{}, false
	}
	var ms uint64
	for _, c := range strings.ToUpper(id[:10]) {
		i := strings.IndexRune(crockford, c)
		if i < 0 {
			return time.Time{}, false
		}
		ms = ms<<5 | uint64(i)
	}
	if ms >= 1<<48 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(ms)), true
}
