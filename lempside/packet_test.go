package lempside

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/lempgw/lempgw/bridge"
)

func TestDecodeForms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Packet
	}{
		{"login strict", `{"rq":{"id":"r1","a":{"i":"alice","t":"secret"}}}`,
			Packet{RQ: &Request{ID: "r1", A: &Auth{I: "alice", T: "secret"}}}},
		{"login README form", `{ rq:{id:"r1",a:{i:"alice",t:"secret"}} }`,
			Packet{RQ: &Request{ID: "r1", A: &Auth{I: "alice", T: "secret"}}}},
		{"logout object", `{rq:{id:"r1", lo:{r:"bye"}}}`,
			Packet{RQ: &Request{ID: "r1", LO: &Logout{R: "bye"}}}},
		{"logout string (older README)", `{rq:{id:"r1", lo:"bye"}}`,
			Packet{RQ: &Request{ID: "r1", LO: &Logout{R: "bye"}}}},
		{"block reference key", `{"rq":{"id":"r1","b":{"username":"bob"}}}`,
			Packet{RQ: &Request{ID: "r1", B: &BlockReq{Username: "bob"}}}},
		{"banish single name", `{rq:{id:"r1",g:{t:"b",i:"g1",m:"bob"}}}`,
			Packet{RQ: &Request{ID: "r1", G: &GroupReq{T: "b", I: "g1", M: StringList{"bob"}}}}},
		{"admin ty as string", `{rq:{id:"r1",ad:{c:"cr",i:"dave",t:"pw",ty:"1"}}}`,
			Packet{RQ: &Request{ID: "r1", AD: &AdminReq{C: "cr", I: "dave", T: "pw", TY: bridge.FlagOn}}}},
		{"admin ty as number", `{rq:{id:"r1",ad:{c:"cr",i:"dave",t:"pw",ty:0}}}`,
			Packet{RQ: &Request{ID: "r1", AD: &AdminReq{C: "cr", I: "dave", T: "pw", TY: bridge.FlagOff}}}},
		{"mute quoted time", `{rq:{id:"r1",mt:{i:"g1",t:"1763850000000"}}}`,
			Packet{RQ: &Request{ID: "r1", MT: &MuteReq{I: "g1", T: 1763850000000}}}},
		{"message flags as numbers and booleans", `{m:{id:"m1",r:"bob",t:"t",c:"hi",st:1.7e12,p:0,sc:true,pc:"0"}}`,
			Packet{M: &bridge.Message{ID: "m1", R: "bob", T: "t", C: "hi", ST: 1700000000000, P: "0", SC: "1", PC: "0"}}},
		{"delivered", `{m:{id:"d1",st:1,dm:{id:"m1"}}}`,
			Packet{M: &bridge.Message{ID: "d1", ST: 1, DM: &bridge.Ref{ID: "m1"}}}},
		{"server time", `{srq:{id:"r1",t:"t"}}`,
			Packet{SRQ: &ServerRequest{ID: "r1", T: "t"}}},
		{"unknown keys ignored", `{"rq":{"id":"r1","s":{"u":"bob","x":1},"y":[1]},"z":true}`,
			Packet{RQ: &Request{ID: "r1", S: &UserRef{U: "bob"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(*p, tt.want) {
				got, _ := json.Marshal(p)
				want, _ := json.Marshal(tt.want)
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in, id string
		message      bool
	}{
		{"not JSON", `hello`, "", false},
		{"array", `[1,2]`, "", false},
		{"unknown packet", `{"x":{"id":"r1"}}`, "", false},
		{"two packets", `{"rq":{"id":"r1"},"srq":{"id":"r2","t":"k"}}`, "r2", false},
		{"wrong type keeps request id", `{"rq":{"id":"r7","a":{"i":5,"t":"x"}}}`, "r7", false},
		{"wrong type keeps message id", `{"m":{"id":"m7","r":"bob","c":{"x":1}}}`, "m7", true},
		{"bad flag", `{"m":{"id":"m8","r":"bob","c":"x","p":"maybe"}}`, "m8", true},
		{"too deep", `{"rq":{"id":"r1","a":{"i":[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]}}}`, "", false},
		{"trailing data", `{"rq":{"id":"r1"}} {}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode accepted %s as %+v", tt.in, p)
			}
			if err.Err.Code != bridge.CodeBadRequest || err.ID != tt.id || err.Message != tt.message {
				t.Fatalf("got %+v (id %q, message %v), want 400 id %q message %v", err.Err, err.ID, err.Message, tt.id, tt.message)
			}
		})
	}
}

func TestEncodeStrictCompact(t *testing.T) {
	o := 0
	ok := 1
	tests := []struct {
		p    Packet
		want string
	}{
		{Packet{RP: &Response{ID: "r1", Response: &ok}}, `{"rp":{"id":"r1","response":1}}`},
		{Packet{RP: &Response{ID: "r1", E: &bridge.Error{Code: 404, Desc: "user not found"}}}, `{"rp":{"id":"r1","e":{"c":404,"d":"user not found"}}}`},
		{Packet{SRP: &ServerResponse{ID: "r1", T: "t", TM: 1763850000000}, O: &o}, `{"srp":{"id":"r1","t":"t","tm":1763850000000},"o":0}`},
		{Packet{RP: &Response{ID: "r1", PR: &[]string{}}}, `{"rp":{"id":"r1","pr":[]}}`},
		{Packet{RP: &Response{ID: "r1", S: &StateResp{U: "bob", V: 0}}}, `{"rp":{"id":"r1","s":{"u":"bob","v":0}}}`},
		{Packet{I: &bridge.Info{LI: "bob"}}, `{"i":{"li":"bob"}}`},
		{Packet{M: &bridge.Message{ID: "m1", R: "alice", SR: &bridge.Ref{ID: "m1"}}}, `{"m":{"id":"m1","r":"alice","sr":{"id":"m1"}}}`},
	}
	for _, tt := range tests {
		if got := string(Encode(&tt.p)); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

// FuzzDecode: no input panics; a decoded packet encodes to strict JSON that
// decodes to the same packet.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"rq":{"id":"r1","a":{"i":"alice","t":"secret"}}}`,
		`{ rq:{id:"id", af:[{u:"f1",n:"nick1"},{u:"f2",n:"nick2"}]} }`,
		`{m:{id:"m1",r:"bob",t:"t",c:"hi",st:1.7e12,p:0,sc:true,pc:"0"}}`,
		`{m:{id:"d1",st:1,dm:{id:"m1"}}}`,
		`{rq:{id:"r1",g:{t:"c",i:"g1",n:"Team",p:"pic",m:["bob","carol"]}}}`,
		`{rq:{id:"r1",mt:{i:"g1",t:"1763850000000"}}}`,
		`{srq:{id:"r1",t:"t"}}`,
		`{"rq":{"id":"r7","a":{"i":5,"t":"x"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Decode(in)
		if err != nil {
			if err.Err == nil || err.Err.Code != bridge.CodeBadRequest {
				t.Fatalf("error without 400: %+v", err)
			}
			return
		}
		out := Encode(p)
		if !json.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
		p2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err.Err)
		}
		if out2 := Encode(p2); string(out2) != string(out) {
			t.Fatalf("round trip changed\n%s\n%s", out, out2)
		}
	})
}

var textFrame = []byte(`{"m":{"id":"m-000123","r":"bob","t":"t","c":"Hello Bob, this is a typical chat message.","st":1763850000000,"p":"1","sc":"1","pc":"1"}}`)

// BenchmarkCodecTextMessage is decode + encode of one text message packet.
func BenchmarkCodecTextMessage(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(textFrame)))
	for b.Loop() {
		p, err := Decode(textFrame)
		if err != nil {
			b.Fatal(err)
		}
		p.M.S = "alice"
		_ = Encode(p)
	}
}
