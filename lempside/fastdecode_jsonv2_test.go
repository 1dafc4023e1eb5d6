//go:build goexperiment.jsonv2

package lempside

import (
	jsonv2 "encoding/json/v2"
	"testing"
)

// The library alternative to the fast path, measured for docs/benchmarks.md:
// encoding/json/v2 (the standard library's copy of
// github.com/go-json-experiment/json), decoding the same frame into Packet.
// Run with GOEXPERIMENT=jsonv2.
func BenchmarkCodecDecodeTextJSONv2(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(textFrame)))
	for b.Loop() {
		var p Packet
		if err := jsonv2.Unmarshal(textFrame, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCodecTextMessageJSONv2(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(textFrame)))
	for b.Loop() {
		p := new(Packet)
		if err := jsonv2.Unmarshal(textFrame, p); err != nil {
			b.Fatal(err)
		}
		p.M.S = "alice"
		_ = Encode(p)
	}
}
