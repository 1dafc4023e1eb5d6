package bridge

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzMessageJSON: the hand-written encoder writes exactly the bytes
// encoding/json writes for any message.
func FuzzMessageJSON(f *testing.F) {
	f.Add("m1", "alice", "bob", "t", "hello", int64(1763850000000), "1", "1", "0", "", "", 0, "")
	f.Add("", "", "", "", "<a&b>\u2028\x00\n\t\"\\\xff", int64(-5), "", "", "", "x", "y", 404, "not \x01 found")
	f.Fuzz(func(t *testing.T, id, s, r, ty, c string, st int64, p, sc, pc, dm, nm string, code int, desc string) {
		m := &Message{ID: id, S: s, R: r, T: ty, C: c, ST: Millis(st), P: Flag(p), SC: Flag(sc), PC: Flag(pc)}
		if dm != "" {
			m.DM = &Ref{ID: dm}
		}
		if nm != "" {
			m.NM = &Ref{ID: nm}
			m.SR = &Ref{ID: nm + dm}
		}
		if code != 0 {
			m.E = &Error{Code: code, Desc: desc}
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := m.AppendJSON(nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
		}
		if !bytes.Contains(got, []byte{'\\'}) && len(got) > m.JSONLen() {
			t.Fatalf("JSONLen %d, but %d bytes without an escape: %s", m.JSONLen(), len(got), got)
		}
		if got := m.AppendJSON([]byte("x{")); string(got) != "x{"+string(want) {
			t.Fatalf("AppendJSON after a '{'\n got %s\nwant x{%s", got, want)
		}
		frame, _ := json.Marshal(Frame{M: m})
		if got := (Frame{M: m}).Encode(); !bytes.Equal(got, frame) {
			t.Fatalf("Frame.Encode\n got %s\nwant %s", got, frame)
		}
	})
}

// TestMessageJSONAllocs: encoding a message into a buffer of JSONLen
// allocates nothing more.
func TestMessageJSONAllocs(t *testing.T) {
	m := &Message{ID: "m-000123", S: "alice", R: "bob", T: "t", C: "Hello Bob, this is a typical chat message.",
		ST: -1763850000000, P: "1", SC: "1", PC: "1", SR: &Ref{ID: "x"}, DM: &Ref{ID: "y"}, NM: &Ref{ID: "z"},
		E: &Error{Code: -404, Desc: "not found"}}
	var out []byte
	allocs := testing.AllocsPerRun(100, func() {
		out = AppendMessageFrame(make([]byte, 0, 6+m.JSONLen()), m)
	})
	if allocs != 1 {
		t.Fatalf("%v allocations for %s, want 1", allocs, out)
	}
}

func TestFlagAndMillisForms(t *testing.T) {
	for in, want := range map[string]Flag{`"1"`: "1", `1`: "1", `true`: "1", `"0"`: "0", `0`: "0", `false`: "0", `"true"`: "1", `2`: "1", `null`: "", ` "0" `: "0"} {
		var f Flag
		if err := json.Unmarshal([]byte(in), &f); err != nil || f != want {
			t.Errorf("Flag %s = %q, %v; want %q", in, f, err, want)
		}
	}
	for in, want := range map[string]Millis{`1763850000000`: 1763850000000, `"1763850000000"`: 1763850000000, `1.5e3`: 1500, `0`: 0, `null`: 0, `-7`: -7, `123456789012345678901`: 0} {
		var m Millis
		err := json.Unmarshal([]byte(in), &m)
		if in == `123456789012345678901` {
			if err == nil && m == 0 {
				t.Errorf("Millis %s accepted as 0", in)
			}
			continue
		}
		if err != nil || m != want {
			t.Errorf("Millis %s = %d, %v; want %d", in, m, err, want)
		}
	}
}

// TestFrameEncodeAllocs: a stored frame is sized exactly, so encoding it is
// one allocation even with a time and flags (the old guess of 96 bytes plus
// the content fell short and grew the buffer).
func TestFrameEncodeAllocs(t *testing.T) {
	m := &Message{ID: "0123456789abcdef", S: "someone.with.a.long.name", R: "receiver.with.a.long.name", T: TypeText,
		C: "hi", ST: 1795445053199, P: FlagOn, SC: FlagOn, PC: FlagOn}
	if n := testing.AllocsPerRun(100, func() { _ = Frame{M: m}.Encode() }); n != 1 {
		t.Fatalf("Frame.Encode of a message: %v allocations, want 1", n)
	}
}
