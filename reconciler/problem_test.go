package reconciler

import (
	"strings"
	"testing"
)

func TestEscapeText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain/path.yaml", "plain/path.yaml"},
		{"a b\"c\\d", "a b\"c\\d"},
		{"x\ny", `x\ny`},
		{"\x1b[31mred", `\x1b[31mred`},
		{"a\u202eb", `a\u202eb`},
		{"c1\u009b", `c1\u009b`},
		{"bad\xff", `bad\xff`},
		{"é ü 日本", "é ü 日本"},
		{"tab\there", `tab\there`},
	}
	for _, tc := range cases {
		got := EscapeText(tc.in)
		if got != tc.want {
			t.Errorf("EscapeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := EscapeText(got); again != got {
			t.Errorf("EscapeText(EscapeText(%q)) = %q, want %q unchanged", tc.in, again, got)
		}
	}
}

func TestProblemEscapedBounded(t *testing.T) {
	p := Problem{Path: "t/\x1b[2Jx.yaml", Message: "quoted " + strings.Repeat("é", 5000)}.Escaped()
	if p.Path != `t/\x1b[2Jx.yaml` {
		t.Errorf("Path = %q", p.Path)
	}
	if len(p.Message) > MaxProblemMessage || !strings.HasSuffix(p.Message, " [...]") {
		t.Errorf("Message is %d bytes ending %q, want at most %d ending [...]", len(p.Message), p.Message[len(p.Message)-10:], MaxProblemMessage)
	}
	if s := (Problem{Path: "a\nb", Line: 1, Message: "m\r\n"}).String(); s != `a\nb:1: m\r\n` {
		t.Errorf("String() = %q", s)
	}
}
