package lempside

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const relaxedTestDepth = 16

type relaxedCase struct {
	name  string
	in    string
	depth int    // 0 means relaxedTestDepth
	want  string // on success; "=" means the input itself (same slice)
	err   string // substring of SyntaxError.Msg when an error is expected
	off   int    // SyntaxError.Offset when err != ""
}

var relaxedCases = []relaxedCase{
	// README forms.
	{name: "readme auth", in: `{ rq:{id:"id",a:{i:"identity",t:"token"}} }`,
		want: `{ "rq":{"id":"id","a":{"i":"identity","t":"token"}} }`},
	{name: "readme add friends", in: `{ rq:{id:"id", af:[{u:"f1",n:"nick1"},{u:"f2",n:"nick2"}]} }`,
		want: `{ "rq":{"id":"id", "af":[{"u":"f1","n":"nick1"},{"u":"f2","n":"nick2"}]} }`},
	{name: "readme srq", in: `{srq:{id:"id",t:"t"}}`,
		want: `{"srq":{"id":"id","t":"t"}}`},
	{name: "readme message", in: `{ m:{id:"id", s:"sender", r:"receiver", t:"t", c:"content", st:1525245355123, p:"1"} }`,
		want: `{ "m":{"id":"id", "s":"sender", "r":"receiver", "t":"t", "c":"content", "st":1525245355123, "p":"1"} }`},
	{name: "readme response with offset", in: `{ srp:{id:"id", r:[1,2]}, o:3 }`,
		want: `{ "srp":{"id":"id", "r":[1,2]}, "o":3 }`},
	{name: "single quotes", in: `{'rq':{'id':'x'}}`, want: `{"rq":{"id":"x"}}`},
	{name: "barewords", in: `{rq:{id:r1,a:{i:alice,t:secret}}}`,
		want: `{"rq":{"id":"r1","a":{"i":"alice","t":"secret"}}}`},
	{name: "bareword charset", in: `{$k_1-a.b:v_2-x.y$, 9:A, -.:_}`,
		want: `{"$k_1-a.b":"v_2-x.y$", "9":"A", "-.":"_"}`},
	{name: "literals stay literals", in: `{a:true,b:false,c:null,d:[1,-2.5e-3,0,1E+2]}`,
		want: `{"a":true,"b":false,"c":null,"d":[1,-2.5e-3,0,1E+2]}`},
	{name: "literal case folded like gson", in: `{a:TRUE,b:False,c:nULL}`,
		want: `{"a":true,"b":false,"c":null}`},
	{name: "words that only start like literals", in: `{a:trueish,b:nullable,c:NaN,d:Infinity}`,
		want: `{"a":"trueish","b":"nullable","c":"NaN","d":"Infinity"}`},
	{name: "literal keys are strings", in: `{true:1,null:2,1:3}`, want: `{"true":1,"null":2,"1":3}`},
	{name: "mixed quoting", in: `{"a":'b',c:"d",'e':f}`, want: `{"a":"b","c":"d","e":"f"}`},
	{name: "whitespace everywhere", in: " \t\r\n{ a : [ 1 , b ] , 'c' : { } , d : [ ] }\n ",
		want: " \t\r\n{ \"a\" : [ 1 , \"b\" ] , \"c\" : { } , \"d\" : [ ] }\n "},
	{name: "empty object relaxed whitespace", in: "{ }", want: "="},

	// Strict JSON passes through as the same slice.
	{name: "strict auth", in: `{"rq":{"id":"id","a":{"i":"identity","t":"token"}}}`, want: "="},
	{name: "strict empty", in: `{}`, want: "="},
	{name: "strict with whitespace", in: "  {\"a\" : [1, 2.5e3, true, null, \"x\\u00e9\\n\\/\"]}  \n", want: "="},
	{name: "strict unicode", in: `{"t":"héllo ✓ 😀 \ufffd �"}`, want: "="},
	{name: "strict lone surrogate escape", in: `{"t":"\ud800"}`, want: "="},
	{name: "strict at exact depth", in: `{"a":[[1]]}`, depth: 3, want: "="},

	// Strings: unicode and escapes.
	{name: "single-quoted unicode", in: `{t:'héllo ✓ 😀'}`, want: `{"t":"héllo ✓ 😀"}`},
	{name: "single-quoted escapes", in: `{'t':'it\'s "q" \"r\" \\ \/ \u00e9 \n'}`,
		want: `{"t":"it's \"q\" \"r\" \\ \/ \u00e9 \n"}`},
	{name: "escaped apostrophe in double quotes", in: `{"t":"a\'b"}`, want: `{"t":"a'b"}`},
	{name: "raw control characters escaped", in: "{t:'a\tb\nc\rd\x01e\x1f\bf\fg'}",
		want: `{"t":"a\tb\nc\rd\u0001e\u001f\bf\fg"}`},
	{name: "raw control in double quotes", in: "{\"t\":\"a\x00b\"}", want: `{"t":"a\u0000b"}`},
	{name: "typographic quotes inside single quotes", in: `{t:'”x”'}`, want: `{"t":"”x”"}`},
	{name: "del passes", in: "{t:'\x7f'}", want: "{\"t\":\"\x7f\"}"},

	// Depth.
	{name: "relaxed at exact depth", in: `{a:[[1]]}`, depth: 3, want: `{"a":[[1]]}`},
	{name: "relaxed deeper than max", in: `{a:[[1]]}`, depth: 2, err: "nesting deeper than 2", off: 4},
	{name: "strict deeper than max", in: `{"a":[[1]]}`, depth: 2, err: "nesting deeper than 2", off: 6},
	{name: "zero depth rejects all", in: `{}`, depth: -1, err: "nesting deeper than 0", off: 0},
	{name: "deep arrays", in: `{a:` + strings.Repeat("[", 100000), err: "nesting deeper than 16", off: 3 + 15},
	{name: "deep objects", in: strings.Repeat(`{"a":`, 100000), err: "nesting deeper than 16", off: 5 * 16},
	{name: "deep top-level arrays", in: strings.Repeat("[", 100000), err: "top-level value must be an object", off: 0},
	{name: "deep but allowed", in: `{"a":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`,
		depth: 301, want: "="},
	{name: "deep relaxed allowed", in: `{a:` + strings.Repeat("[", 300) + "x" + strings.Repeat("]", 300) + `}`,
		depth: 1000, want: `{"a":` + strings.Repeat("[", 300) + `"x"` + strings.Repeat("]", 300) + `}`},
	{name: "deep with huge limit", in: `{a:` + strings.Repeat("[", 100000), depth: 1 << 30,
		err: "unexpected end of input", off: 100003},
	{name: "deep one too many", in: `{"a":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`,
		depth: 300, err: "nesting deeper than 300", off: 5 + 299},

	// Errors.
	{name: "empty", in: "", err: "empty input", off: 0},
	{name: "only whitespace", in: " \n\t", err: "empty input", off: 3},
	{name: "lone close brace", in: "}", err: "unexpected '}'", off: 0},
	{name: "lone close brace after space", in: "  }", err: "unexpected '}'", off: 2},
	{name: "top-level array", in: `[1]`, err: "top-level value must be an object", off: 0},
	{name: "top-level string", in: `"x"`, err: "top-level value must be an object", off: 0},
	{name: "top-level number", in: ` 1`, err: "top-level value must be an object", off: 1},
	{name: "top-level bareword", in: `rq:{}`, err: "top-level value must be an object", off: 0},
	{name: "trailing data", in: `{a:1} x`, err: "trailing data", off: 6},
	{name: "two objects", in: `{}{}`, err: "trailing data", off: 2},
	{name: "trailing close", in: `{a:1}}`, err: "trailing data", off: 5},
	{name: "unterminated double", in: `{a:"abc`, err: "unterminated string", off: 3},
	{name: "unterminated single", in: `{a:'abc`, err: "unterminated string", off: 3},
	{name: "unterminated by escape", in: `{a:"abc\"}`, err: "unterminated string", off: 3},
	{name: "backslash at end", in: `{a:"abc\`, err: "unterminated string", off: 3},
	{name: "unterminated key", in: `{'a:1}`, err: "unterminated string", off: 1},
	{name: "end after key", in: `{a`, err: "unexpected end of input", off: 2},
	{name: "end after colon", in: `{a:`, err: "unexpected end of input", off: 3},
	{name: "end after value", in: `{a:1`, err: "unexpected end of input", off: 4},
	{name: "end after open", in: `{`, err: "unexpected end of input", off: 1},
	{name: "end after comma", in: `{a:1,`, err: "unexpected end of input", off: 5},
	{name: "end in array", in: `{a:[1,`, err: "unexpected end of input", off: 6},
	{name: "invalid utf8 in string", in: "{t:'a\xffb'}", err: "invalid UTF-8 byte 0xff", off: 5},
	{name: "invalid utf8 in strict string", in: "{\"t\":\"\xc3\"}", err: "invalid UTF-8 byte 0xc3", off: 6},
	{name: "utf8 encoded surrogate", in: "{\"t\":\"\xed\xa0\x80\"}", err: "invalid UTF-8", off: 6},
	{name: "overlong utf8", in: "{\"t\":\"\xc0\xaf\"}", err: "invalid UTF-8", off: 6},
	{name: "invalid utf8 bareword", in: "{t:a\xff}", err: "invalid UTF-8 byte 0xff", off: 4},
	{name: "invalid utf8 key", in: "{\xff:1}", err: "invalid UTF-8 byte 0xff", off: 1},
	{name: "typographic quotes", in: `{t:”x”}`, err: "unexpected '”'", off: 3},
	{name: "typographic quote after word", in: `{t:x”}`, err: "unexpected '”' (U+201D) in unquoted string", off: 4},
	{name: "bare JID value", in: `{r:bob@example.org/lemp}`, want: `{"r":"bob@example.org/lemp"}`},
	{name: "at sign in key", in: `{a@b:1}`, err: "expected ':' after object key, found '@'", off: 2},
	{name: "trailing comma object", in: `{a:1,}`, err: "trailing comma before '}'", off: 5},
	{name: "trailing comma array", in: `{a:[1, ]}`, err: "trailing comma before ']'", off: 7},
	{name: "leading comma array", in: `{a:[,1]}`, err: "unexpected ','", off: 4},
	{name: "double comma", in: `{a:1,,b:2}`, err: "expected object key, found ','", off: 5},
	{name: "missing colon", in: `{a 1}`, err: "expected ':' after object key, found '1'", off: 3},
	{name: "missing comma", in: `{a:1 b:2}`, err: "expected ',' or '}', found 'b'", off: 5},
	{name: "missing comma array", in: `{a:[1 2]}`, err: "expected ',' or ']', found '2'", off: 6},
	{name: "mismatched close", in: `{a:[1}`, err: "expected ',' or ']', found '}'", off: 5},
	{name: "missing value", in: `{a:}`, err: "unexpected '}'", off: 3},
	{name: "close bracket after colon", in: `{a:]}`, err: "unexpected ']'", off: 3},
	{name: "line comment", in: "{a:1 // c\n}", err: "expected ',' or '}', found '/'", off: 5},
	{name: "block comment", in: "{/* c */a:1}", err: "expected object key, found '/'", off: 1},
	{name: "hash comment", in: "{a:1 # c\n}", err: "expected ',' or '}', found '#'", off: 5},
	{name: "semicolon separator", in: "{a:1;b:2}", err: "unexpected ';'", off: 4},
	{name: "equals separator", in: "{a=1}", err: "expected ':' after object key, found '='", off: 2},
	{name: "bom", in: "\ufeff{}", err: "top-level value must be an object", off: 0},
	{name: "invalid escape", in: `{a:"\x"}`, err: `invalid escape 'x'`, off: 4},
	{name: "short unicode escape", in: `{a:"\u12"}`, err: `invalid \u escape`, off: 4},
	{name: "bad hex unicode escape", in: `{a:'\u12g4'}`, err: `invalid \u escape`, off: 4},
	{name: "unicode escape at end", in: `{a:"\u`, err: `invalid \u escape`, off: 4},
	{name: "control outside string", in: "{a:\x01}", err: "unexpected byte 0x01", off: 3},

	// Numbers.
	{name: "hex number", in: `{a:0x10}`, err: "invalid number", off: 3},
	{name: "incomplete exponent", in: `{a:1e}`, err: "invalid number", off: 3},
	{name: "exponent sign only", in: `{a:1e+}`, err: "invalid number", off: 3},
	{name: "leading zero", in: `{a:01}`, err: "invalid number", off: 3},
	{name: "trailing dot", in: `{a:1.}`, err: "invalid number", off: 3},
	{name: "two dots", in: `{a:1.2.3}`, err: "invalid number", off: 3},
	{name: "number then letters", in: `{a:1abc}`, err: "invalid number", off: 3},
	{name: "lone minus", in: `{a:-}`, err: "invalid number", off: 3},
	{name: "minus word", in: `{a:-abc}`, err: "invalid number", off: 3},
	{name: "minus minus", in: `{a:--1}`, err: "invalid number", off: 3},
	{name: "leading plus", in: `{a:+1}`, err: "invalid number: leading '+'", off: 3},
	{name: "leading dot", in: `{a:.5}`, err: "unexpected '.'", off: 3},
	{name: "plus after number", in: `{a:1+2}`, err: "invalid number", off: 3},
	{name: "number then quote", in: `{a:1"x"}`, err: `unexpected '"'`, off: 4},
	{name: "number at end", in: `{a:12`, err: "unexpected end of input", off: 5},
	{name: "big numbers", in: `{a:-0.0e-0,b:123456789012345678901234567890}`,
		want: `{"a":-0.0e-0,"b":123456789012345678901234567890}`},
}

func runRelaxedCase(t *testing.T, tc relaxedCase) {
	t.Helper()
	depth := tc.depth
	switch {
	case depth == 0:
		depth = relaxedTestDepth
	case depth < 0:
		depth = 0
	}
	in := []byte(tc.in)
	out, err := Relaxed(in, depth)
	if tc.err != "" {
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("Relaxed(%q) = %q, %v; want SyntaxError %q", clip(tc.in), out, err, tc.err)
		}
		if !strings.Contains(se.Msg, tc.err) || se.Offset != tc.off {
			t.Fatalf("Relaxed(%q) error = %q at %d; want %q at %d", clip(tc.in), se.Msg, se.Offset, tc.err, tc.off)
		}
		if out != nil {
			t.Errorf("output %q alongside error", out)
		}
		if want := " at offset "; !strings.Contains(err.Error(), want) {
			t.Errorf("Error() = %q lacks %q", err.Error(), want)
		}
		return
	}
	if err != nil {
		t.Fatalf("Relaxed(%q): %v", clip(tc.in), err)
	}
	want := tc.want
	if want == "=" {
		want = tc.in
		if len(in) > 0 && &out[0] != &in[0] {
			t.Errorf("strict input was copied, want the same slice")
		}
	}
	if string(out) != want {
		t.Fatalf("Relaxed(%q)\n got %q\nwant %q", clip(tc.in), clip(string(out)), clip(want))
	}
	if !json.Valid(out) {
		t.Fatalf("output %q is not valid JSON", clip(string(out)))
	}
	again, err := Relaxed(out, depth)
	if err != nil || string(again) != string(out) || &again[0] != &out[0] {
		t.Fatalf("Relaxed(output) = %q, %v; want output unchanged", clip(string(again)), err)
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func TestRelaxed(t *testing.T) {
	for _, tc := range relaxedCases {
		t.Run(tc.name, func(t *testing.T) { runRelaxedCase(t, tc) })
	}
}

func TestRelaxedErrorString(t *testing.T) {
	_, err := Relaxed([]byte(`{a:1}}`), relaxedTestDepth)
	if got, want := err.Error(), "trailing data at offset 5"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = Relaxed([]byte(` }`), relaxedTestDepth)
	if got, want := err.Error(), "unexpected '}' at offset 1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestRelaxedSameAsStrict checks that the README form and its strict
// equivalent decode to the same value.
func TestRelaxedSameAsStrict(t *testing.T) {
	pairs := [][2]string{
		{`{ rq:{id:'i\'d', a:{i:alice, t:"to\"ken"}} }`, `{"rq":{"id":"i'd","a":{"i":"alice","t":"to\"ken"}}}`},
		{`{ m:{id:"id", st:1525245355123, c:'say "hi"\n\u00e9'} }`, `{"m":{"id":"id","st":1525245355123,"c":"say \"hi\"\né"}}`},
	}
	for _, p := range pairs {
		out, err := Relaxed([]byte(p[0]), relaxedTestDepth)
		if err != nil {
			t.Fatalf("Relaxed(%q): %v", p[0], err)
		}
		var got, want any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("Unmarshal(%q): %v", out, err)
		}
		if err := json.Unmarshal([]byte(p[1]), &want); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Errorf("Relaxed(%q) decodes to %s, want %s", p[0], gb, wb)
		}
	}
}

func TestRelaxedStrictNoAlloc(t *testing.T) {
	in := []byte(relaxedStrictFrame)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Relaxed(in, relaxedTestDepth); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("strict fast path allocates %v times, want 0", allocs)
	}
}

// A typical message frame, strict (about 150 bytes) and in README form.
const (
	relaxedStrictFrame = `{"m":{"id":"7c1e9a40-5b2d-4f0e-9c77-1d2a3b4c5d6e","s":"alice","r":"bob",` +
		`"t":"t","c":"Hello Bob, are we still on for 5?","st":1525245355123,"p":"1"}}`
	relaxedREADMEFrame = `{ m:{id:"7c1e9a40-5b2d-4f0e-9c77-1d2a3b4c5d6e", s:"alice", r:"bob", ` +
		`t:"t", c:'Hello Bob, are we still on for 5?', st:1525245355123, p:"1"} }`
)

func BenchmarkRelaxedStrict(b *testing.B) {
	in := []byte(relaxedStrictFrame)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Relaxed(in, relaxedTestDepth); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRelaxedREADME(b *testing.B) {
	in := []byte(relaxedREADMEFrame)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Relaxed(in, relaxedTestDepth); err != nil {
			b.Fatal(err)
		}
	}
}
