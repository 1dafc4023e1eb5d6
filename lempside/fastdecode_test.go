package lempside

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/lempgw/lempgw/bridge"
)

// TestDecodeFastPathTaken: the frames a client sends on the hot path go the
// fast way and decode to what the general path gives.
func TestDecodeFastPathTaken(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bridge.Message
	}{
		{"text message", string(textFrame),
			bridge.Message{ID: "m-000123", R: "bob", T: "t", C: "Hello Bob, this is a typical chat message.", ST: 1763850000000, P: "1", SC: "1", PC: "1"}},
		{"delivered", `{"m":{"id":"a1","dm":{"id":"b1"}}}`,
			bridge.Message{ID: "a1", DM: &bridge.Ref{ID: "b1"}}},
		{"noticed and server receipts", `{"m":{"id":"a1","nm":{"id":"b1"},"sr":{"id":"b2"}}}`,
			bridge.Message{ID: "a1", NM: &bridge.Ref{ID: "b1"}, SR: &bridge.Ref{ID: "b2"}}},
		{"empty ref", `{"m":{"id":"a1","dm":{}}}`,
			bridge.Message{ID: "a1", DM: &bridge.Ref{}}},
		{"empty message", `{"m":{}}`, bridge.Message{}},
		{"empty strings", `{"m":{"id":"","c":"","dm":{"id":""}}}`, bridge.Message{DM: &bridge.Ref{}}},
		{"whitespace everywhere", " \t{ \"m\" :\r\n{ \"id\" : \"x\" , \"dm\" : { \"id\" : \"y\" } , \"st\" : 0 } } \n",
			bridge.Message{ID: "x", DM: &bridge.Ref{ID: "y"}}},
		{"flags as numbers and booleans", `{"m":{"id":"m1","p":0,"sc":true,"pc":false}}`,
			bridge.Message{ID: "m1", P: "0", SC: "1", PC: "0"}},
		{"flags as strings", `{"m":{"id":"m1","p":"0","sc":"1","pc":1}}`,
			bridge.Message{ID: "m1", P: "0", SC: "1", PC: "1"}},
		{"negative time", `{"m":{"id":"m1","st":-7}}`, bridge.Message{ID: "m1", ST: -7}},
		{"sender given", `{"m":{"s":"mallory","r":"bob"}}`, bridge.Message{S: "mallory", R: "bob"}},
		{"escapes", `{"m":{"id":"e\"1","c":"a\\b\/c\b\f\n\r\t\u00e9\u20AC\ud83d\ude00 \ud800 \udc00x \ud800\u0041","r":"bob"}}`,
			bridge.Message{ID: `e"1`, R: "bob", C: "a\\b/c\b\f\n\r\t\u00e9\u20ac\U0001F600 \ufffd \ufffdx \ufffdA"}},
		{"escape in a ref only", `{"m":{"id":"a","dm":{"id":"\u0062"}}}`,
			bridge.Message{ID: "a", DM: &bridge.Ref{ID: "b"}}},
		{"UTF-8 text", `{"m":{"id":"m1","c":"grüße ☃ 😀"}}`, bridge.Message{ID: "m1", C: "grüße ☃ 😀"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decodeFast([]byte(tt.in))
			if p == nil {
				t.Fatalf("fast path declined %s", tt.in)
			}
			want := Packet{M: &tt.want}
			if !reflect.DeepEqual(*p, want) {
				t.Fatalf("got  %s\nwant %s", mustJSON(p), mustJSON(want))
			}
			g, derr := decodeGeneral([]byte(tt.in))
			if derr != nil || !reflect.DeepEqual(*g, want) {
				t.Fatalf("general path: %+v %v; the test's expectation is wrong", g, derr)
			}
		})
	}
}

// TestDecodeFastPathDeclines: whatever the fast path does not fully
// understand goes the general way, which decides (Decode's result is the
// general path's, errors included).
func TestDecodeFastPathDeclines(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `{"m":null}`, `{"m":[]}`, `{"m":"x"}`,
		`{m:{id:"m1"}}`,                      // relaxed form
		`{"m":{'id':"m1"}}`,                  // relaxed form
		`{"M":{"id":"m1"}}`,                  // another letter case, which encoding/json matches
		`{"m":{"ID":"m1"}}`,                  // likewise
		`{"\u006d":{"id":"m1"}}`,             // escaped key
		`{"m":{"i\u0064":"m1"}}`,             // escaped key
		`{"m":{"id":"m1"},"rq":{"id":"r1"}}`, // two packets
		`{"m":{"id":"m1"},"z":1}`,            // unknown top-level key
		`{"m":{"id":"m1","x":1}}`,            // unknown key
		`{"m":{"id":"m1","e":{"c":400}}}`,    // e
		`{"m":{"id":"m1","id":"m2"}}`,        // duplicate key
		`{"m":{"id":"m1"},"m":{"r":"bob"}}`,  // duplicate key
		`{"m":{"id":null}}`,                  // null
		`{"m":{"p":null}}`,                   // null
		`{"m":{"id":5}}`,                     // wrong type
		`{"m":{"c":{"x":1}}}`,                // wrong type
		`{"m":{"st":"1763850000000"}}`,       // quoted time
		`{"m":{"st":1.7e12}}`,                // float time
		`{"m":{"st":1.5}}`,                   // float time
		`{"m":{"st":01}}`,                    // invalid number
		`{"m":{"st":-}}`,                     // invalid number
		`{"m":{"st":1234567890123456789}}`,   // 19 digits
		`{"m":{"p":2}}`,                      // flag as another number
		`{"m":{"p":10}}`,                     // flag as another number
		`{"m":{"p":1.0}}`,                    // flag as another number
		`{"m":{"p":"true"}}`,                 // flag as another string
		`{"m":{"p":TRUE}}`,                   // relaxed literal
		`{"m":{"p":truex}}`,                  // bad literal
		`{"m":{"dm":{"id":"a","x":1}}}`,      // ref with another key
		`{"m":{"dm":{"id":"a","id":"b"}}}`,   // ref with a duplicate key
		`{"m":{"dm":{"ID":"a"}}}`,            // ref key in another case
		`{"m":{"dm":"a"}}`,                   // ref as a string
		"{\"m\":{\"c\":\"a\x01b\"}}",         // raw control character (Relaxed escapes it)
		"{\"m\":{\"c\":\"a\xffb\"}}",         // invalid UTF-8 (Relaxed rejects it)
		"{\"m\":{\"c\":\"\xed\xa0\x80\"}}",   // UTF-8 encoded surrogate
		`{"m":{"c":"a\'b"}}`,                 // not a JSON escape
		`{"m":{"c":"a\x41"}}`,                // not a JSON escape
		`{"m":{"c":"\u12"}}`,                 // short \u escape
		`{"m":{"c":"abc}}`,                   // unterminated
		`{"m":{"id":"m1",}}`,                 // trailing comma
		`{"m":{"id":"m1"}} {}`,               // trailing data
		`{"m":{"id":"m1"}`,                   // truncated
		`{"m":{"id":"m1"}}}`,                 // extra brace
		`{"m":{"id" "m1"}}`,                  // missing colon
		`{"m":{"id":"m1" "r":"bob"}}`,        // missing comma
		"\ufeff{\"m\":{\"id\":\"m1\"}}",      // byte order mark
		"{\"m\":{\"id\":\"m1\"}}\x00",        // trailing NUL
		"{\"m\":{\"id\":\"m1\"\v}}",          // not JSON whitespace
	} {
		if p := decodeFast([]byte(in)); p != nil {
			t.Errorf("fast path accepted %q as %s", in, mustJSON(p))
		}
	}
}

// TestCodecAllocs holds the allocation budget of issue 5 (at most 8 for
// decode + encode of a text message): for a decoded message one for the
// structs and one for each string longer than a byte (the runtime has those
// already), one for an encoded message. The general path takes 12.
func TestCodecAllocs(t *testing.T) {
	escaped := []byte(`{"m":{"id":"m1","r":"bob","t":"t","c":"line one\nline \"two\" \u00e9","sc":1}}`)
	for _, tt := range []struct {
		name  string
		frame []byte
		want  float64
	}{
		{"text decode+encode", textFrame, 5},       // struct, id, r, c; frame
		{"receipt decode+encode", receiptFrame, 4}, // struct, id, dm.id; frame
		{"escaped text decode+encode", escaped, 5}, // struct, id, r, c; frame
		// One more for Relaxed's strict copy, then the fast path.
		{"README form decode+encode", []byte(`{m:{id:"m1",r:bob,t:t,c:"hi",sc:1}}`), 6},
	} {
		allocs := testing.AllocsPerRun(200, func() {
			p, err := Decode(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			p.M.S = "alice"
			_ = Encode(p)
		})
		if allocs != tt.want {
			t.Errorf("%s: %v allocations, want %v", tt.name, allocs, tt.want)
		}
	}
}

// TestDecodeDoesNotRetainFrame: the caller may reuse its read buffer once
// Decode has returned, whichever path the frame took.
func TestDecodeDoesNotRetainFrame(t *testing.T) {
	for _, in := range []string{
		string(textFrame), // fast path
		`{"m":{"id":"m1","c":"a\nb","dm":{"id":"x"}}}`, // fast path, escapes
		`{m:{id:"m1",r:bob,c:"hi"}}`,                   // Relaxed, then the fast path
		`{"m":{"id":"m1","c":"hi","x":[1]}}`,           // encoding/json
		`{"rq":{"id":"r1","a":{"i":"alice","t":"secret"}}}`,
	} {
		frame := []byte(in)
		p, err := Decode(frame)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		want := mustJSON(p)
		for i := range frame {
			frame[i] = 'X'
		}
		if got := mustJSON(p); got != want {
			t.Errorf("%s: packet changed with the frame: %s", in, got)
		}
	}
}

// FuzzDecodeFastPath: for any input the fast path either declines or gives
// exactly what the general path gives; in particular it never accepts what
// the general path rejects.
func FuzzDecodeFastPath(f *testing.F) {
	for _, s := range []string{
		string(textFrame),
		`{"m":{"id":"a1","dm":{"id":"b1"}}}`,
		`{"m":{"id":"a1","nm":{},"sr":{"id":""}}}`,
		` { "m" : { "id" : "x" , "p" : 0 , "sc" : true , "pc" : "0" , "st" : -12 } } `,
		`{"m":{"id":"e\"1","c":"a\\b\/c\b\f\n\r\t\u00e9\ud83d\ude00\ud800\u0041"}}`,
		`{"m":{"id":"m1","ID":"m2"}}`,
		`{"m":{"st":1.7e12,"p":2}}`,
		"{\"m\":{\"c\":\"a\x01\xffb\"}}",
		`{m:{id:"m1",r:bob}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		general, gerr := decodeGeneral(in)
		// Decode as a whole (the fast path on the frame and on its
		// relaxed rewrite) gives the general path's result, errors included.
		if p, derr := Decode(in); !reflect.DeepEqual(p, general) || !reflect.DeepEqual(derr, gerr) {
			t.Fatalf("%q\nDecode  %s %v\ngeneral %s %v", in, mustJSON(p), derr, mustJSON(general), gerr)
		}
		// The fast path alone: declines, or agrees.
		fast := decodeFast(in)
		if fast == nil {
			return
		}
		if gerr != nil {
			t.Fatalf("fast path accepted %q, general path rejects it: %v", in, gerr)
		}
		if !reflect.DeepEqual(*fast, *general) {
			t.Fatalf("%q\nfast    %s\ngeneral %s", in, mustJSON(fast), mustJSON(general))
		}
	})
}

// FuzzDecodeFastPathMessages: every message our own encoder writes (any
// strings, so every escape it makes) takes the fast path and decodes to what
// the general path gives, which is the message itself when its strings are
// valid UTF-8.
func FuzzDecodeFastPathMessages(f *testing.F) {
	f.Add("m1", "bob", "t", "hello", int64(1763850000000), uint8(7), "", "")
	f.Add("a\"1", "<b&>", "\u2028", "\x00\x1f\n\t\xff\xed\xa0\x80 \U0001F600", int64(-5), uint8(0), "x", "")
	f.Fuzz(func(t *testing.T, id, r, ty, c string, st int64, flags uint8, dm, nm string) {
		flag := func(bit uint8) bridge.Flag {
			return [...]bridge.Flag{"", "0", "1", "1"}[flags>>bit&3]
		}
		m := &bridge.Message{ID: id, R: r, T: ty, C: c, ST: bridge.Millis(st), P: flag(0), SC: flag(2), PC: flag(4)}
		if dm != "" {
			m.DM = &bridge.Ref{ID: dm}
		}
		if nm != "" {
			m.NM = &bridge.Ref{ID: nm}
		}
		frame := Encode(&Packet{M: m})
		fast := decodeFast(frame)
		digits := len(strconv.FormatInt(st, 10))
		if st < 0 {
			digits--
		}
		if fast == nil {
			if digits > 18 {
				return // long times go the general way
			}
			t.Fatalf("fast path declined %s", frame)
		}
		general, derr := decodeGeneral(frame)
		if derr != nil {
			t.Fatalf("general path rejects %s: %v", frame, derr)
		}
		if !reflect.DeepEqual(*fast, *general) {
			t.Fatalf("%s\nfast    %s\ngeneral %s", frame, mustJSON(fast), mustJSON(general))
		}
		valid := true // each string on its own: "\xdd"+"\x8e" is valid UTF-8, each half is not
		for _, s := range []string{id, r, ty, c, dm, nm} {
			valid = valid && utf8.ValidString(s)
		}
		if valid && !reflect.DeepEqual(fast.M, m) {
			t.Fatalf("%s\ndecoded %s\nwant    %s", frame, mustJSON(fast.M), mustJSON(m))
		}
	})
}

// FuzzEncodeMessagePacket: Encode's message fast path writes exactly what
// encoding/json writes for the packet.
func FuzzEncodeMessagePacket(f *testing.F) {
	f.Add(string(textFrame))
	f.Add(`{"m":{"id":"a1","dm":{"id":"b<&>\u2028"}}}`)
	f.Fuzz(func(t *testing.T, in string) {
		p, derr := Decode([]byte(in))
		if derr != nil || p.M == nil {
			return
		}
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := Encode(p); string(got) != string(want) {
			t.Fatalf("Encode\n got %s\nwant %s", got, want)
		}
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

var receiptFrame = []byte(`{"m":{"id":"a123","dm":{"id":"m-000123"}}}`)

// The two halves of BenchmarkCodecTextMessage, a receipt and a message in
// the README's relaxed form.
func BenchmarkCodecDecodeText(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(textFrame)))
	for b.Loop() {
		if _, err := Decode(textFrame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCodecDecodeTextGeneral(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(textFrame)))
	for b.Loop() {
		if _, err := decodeGeneral(textFrame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCodecEncodeText(b *testing.B) {
	p, err := Decode(textFrame)
	if err != nil {
		b.Fatal(err)
	}
	p.M.S = "alice"
	b.ReportAllocs()
	for b.Loop() {
		_ = Encode(p)
	}
}

func BenchmarkCodecReceipt(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(receiptFrame)))
	for b.Loop() {
		p, err := Decode(receiptFrame)
		if err != nil {
			b.Fatal(err)
		}
		p.M.S = "bob"
		_ = Encode(p)
	}
}

func BenchmarkCodecDecodeREADMEForm(b *testing.B) {
	frame := []byte(`{m:{id:"m-000123",r:"bob",t:"t",c:"Hello Bob, this is a typical chat message.",st:1763850000000,p:1,sc:1,pc:1}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}
