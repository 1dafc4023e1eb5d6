package lempside_test

import (
	"bytes"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/lempside"
)

// BenchmarkMessagePath measures the whole in-process LEMP-to-LEMP path over
// real websockets on loopback: alice sends, the message is made durable, alice
// gets sr, bob gets the message and acknowledges it with dm, alice gets the
// dm. Up to window messages are in flight. Reported: messages per second and
// the p50/p99 time from send to bob's receipt. The allocations per message
// count both clients' too: they run in the same process.
func BenchmarkMessagePath(b *testing.B) {
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			g := startGateway(b, backends()[name](b), lempside.Config{WriteQueue: 4096})
			g.user(b, "alice", false)
			g.user(b, "bob", false)
			alice, bob := benchLogin(b, g, "alice"), benchLogin(b, g, "bob")
			const window = 64
			n := b.N
			sent := make([]time.Time, n)
			lat := make([]time.Duration, 0, n)
			credits := make(chan struct{}, window)
			for range window {
				credits <- struct{}{}
			}
			bobDone := make(chan error, 1)
			go func() { // bob: receive, acknowledge
				for i := 0; i < n; i++ {
					_, f, err := bob.ReadMessage()
					if err != nil {
						bobDone <- err
						return
					}
					var id int
					if _, err := fmt.Sscanf(string(f[bytes.Index(f, []byte(`"id":"b`))+7:]), "%d", &id); err != nil {
						bobDone <- fmt.Errorf("frame %s: %v", f, err)
						return
					}
					lat = append(lat, time.Since(sent[id]))
					if err := bob.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"m":{"id":"a%d","dm":{"id":"b%d"}}}`, id, id)); err != nil {
						bobDone <- err
						return
					}
				}
				bobDone <- nil
			}()
			aliceDone := make(chan error, 1)
			go func() { // alice: sr and dm for every message
				for i := 0; i < 2*n; i++ {
					_, f, err := alice.ReadMessage()
					if err != nil {
						aliceDone <- err
						return
					}
					if bytes.Contains(f, []byte(`"dm"`)) {
						credits <- struct{}{}
					}
				}
				aliceDone <- nil
			}()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < n; i++ {
				<-credits
				sent[i] = time.Now()
				if err := alice.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"m":{"id":"b%d","r":"bob","t":"t","c":"benchmark message %d"}}`, i, i)); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-bobDone; err != nil {
				b.Fatal(err)
			}
			if err := <-aliceDone; err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

func benchLogin(b *testing.B, g *gateway, name string) *websocket.Conn {
	b.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(g.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.Close() })
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"rq":{"id":"l","a":{"i":"`+name+`","t":"`+name+`-token"}}}`)); err != nil {
		b.Fatal(err)
	}
	if _, f, err := ws.ReadMessage(); err != nil || !bytes.Contains(f, []byte(`"response":1`)) {
		b.Fatalf("login %s: %s %v", name, f, err)
	}
	return ws
}
