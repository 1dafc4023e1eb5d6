package lempside_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/lempside"
)

// Error handling: packets before login, malformed and mistyped packets,
// oversized and binary frames (contract decisions 2 and 14), hostile input,
// and the README's relaxed packet form end to end (decision 1).

func TestBeforeLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		c := g.dial(t)
		for i, body := range []string{
			`"s":{"u":"bob"}`, `"i":{"u":"bob"}`, `"af":[{"u":"bob"}]`, `"rf":["bob"]`, `"uf":[{"u":"bob"}]`,
			`"p":{"t":"g","u":"bob"}`, `"st":{"t":"g","u":"bob"}`, `"b":{"u":"bob"}`, `"ub":{"u":"bob"}`,
			`"get":{"o":"pr"}`, `"g":{"t":"c","i":"g1"}`, `"br":{"t":"c","i":"b1"}`, `"n":{"t":"g","i":"g1"}`,
			`"mt":{"i":"g1","t":1}`, `"umt":{"i":"g1"}`, `"ad":{"c":"cr","i":"x","t":"y"}`, `"lo":{"r":"bye"}`,
		} {
			c.fail(fmt.Sprintf("r%d", i), body, 401)
		}
		c.send(`{"srq":{"id":"t1","t":"t"}}`)
		c.expect(errRP("t1", 401))
		c.send(`{"srq":{"id":"k1","t":"k"}}`)
		c.expect(errRP("k1", 401))
		c.send(`{"m":{"id":"m1","r":"bob","c":"hi"}}`)
		c.expect(errM("m1", 401))
		c.send(`{"m":{"id":"d1","dm":{"id":"m1"}}}`)
		c.expect(errM("d1", 401))
		// A packet that does not parse is 400 whether logged in or not.
		c.send(`{rq:`)
		c.expect(errRP("", 400))

		c.send(`{"rq":{"id":"l1","a":{"i":"alice","t":"alice-token"}}}`)
		c.expect(`{"rp":{"id":"l1","response":1}}`)
		c.knock("k2")
		// Nothing sent before the login was accepted.
		b := g.login(t, "bob")
		b.quiet(short)
	})
}

// hostile are bad packets, each with the one response it must get.
var hostile = []struct {
	name, frame, want string
}{
	{"empty frame", ``, errRP("", 400)},
	{"whitespace", "  \n\t ", errRP("", 400)},
	{"not json", `hello`, errRP("", 400)},
	{"truncated", `{"rq":{"id":"h0","s":{"u":"bob"}}`, errRP("", 400)},
	{"null", `null`, errRP("", 400)},
	{"array", `[{"rq":{"id":"h0"}}]`, errRP("", 400)},
	{"string", `"rq"`, errRP("", 400)},
	{"number", `42`, errRP("", 400)},
	{"empty object", `{}`, errRP("", 400)},
	{"unknown envelope", `{"x":{"id":"h0"}}`, errRP("", 400)},
	{"server-side envelope", `{"rp":{"id":"h0"}}`, errRP("", 400)},
	{"null rq", `{"rq":null}`, errRP("", 400)},
	{"null m", `{"m":null}`, errRP("", 400)},
	{"rq not an object", `{"rq":"x"}`, errRP("", 400)},
	// No readable id: the plain rp form, as for a frame that does not parse.
	{"m not an object", `{"m":[1,2]}`, errRP("", 400)},
	{"trailing garbage", `{"srq":{"id":"h0","t":"k"}} {"x":1}`, errRP("", 400)},
	{"two objects", `{"srq":{"id":"h0","t":"k"}}{"srq":{"id":"h0","t":"k"}}`, errRP("", 400)},
	{"trailing comma", `{"srq":{"id":"h0","t":"k"},}`, errRP("", 400)},
	{"comment", `{"srq":{"id":"h0","t":"k"}} // hi`, errRP("", 400)},
	{"typographic quotes", `{ srq:{id:”h0”,t:”k”} }`, errRP("", 400)},
	{"invalid utf-8", "{\"rq\":{\"id\":\"h0\",\"s\":{\"u\":\"\xff\xfe\"}}}", errRP("", 400)},
	{"lone surrogate bytes", "{\"rq\":{\"id\":\"h0\",\"s\":{\"u\":\"\xed\xa0\x80\"}}}", errRP("", 400)},
	{"too deep", `{"rq":{"id":"h0","s":{"u":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}}}`, errRP("", 400)},
	{"very deep", strings.Repeat(`{"a":`, 400) + `1` + strings.Repeat(`}`, 400), errRP("", 400)},
	{"deep arrays", `{"rq":` + strings.Repeat("[", 900), errRP("", 400)},
	{"two envelopes", `{"rq":{"id":"h1","s":{"u":"bob"}},"m":{"id":"h1","r":"bob"}}`, errRP("h1", 400)},
	{"three envelopes", `{"rq":{"id":"h2"},"m":{"id":"h2"},"srq":{"id":"h2","t":"k"}}`, errRP("h2", 400)},
	{"rq without operation", `{"rq":{"id":"h3"}}`, errRP("h3", 400)},
	{"unknown operation", `{"rq":{"id":"h4","zz":{"u":"bob"}}}`, errRP("h4", 400)},
	{"two operations", `{"rq":{"id":"h5","s":{"u":"bob"},"i":{"u":"bob"}}}`, errRP("h5", 400)},
	{"login and more", `{"rq":{"id":"h6","a":{"i":"bob","t":"bob-token"},"s":{"u":"bob"}}}`, errRP("h6", 400)},
	{"logout and more", `{"rq":{"id":"h7","lo":{"r":"bye"},"s":{"u":"bob"}}}`, errRP("h7", 400)},
	{"state not an object", `{"rq":{"id":"h8","s":"bob"}}`, errRP("h8", 400)},
	{"username a number", `{"rq":{"id":"h9","s":{"u":5}}}`, errRP("h9", 400)},
	{"af an object", `{"rq":{"id":"h10","af":{"u":"bob"}}}`, errRP("h10", 400)},
	{"rf numbers", `{"rq":{"id":"h11","rf":[1,2]}}`, errRP("h11", 400)},
	{"members a number", `{"rq":{"id":"h12","g":{"t":"c","i":"x","m":5}}}`, errRP("h12", 400)},
	{"mute time a word", `{"rq":{"id":"h13","mt":{"i":"g","t":"soon"}}}`, errRP("h13", 400)},
	{"admin type bad", `{"rq":{"id":"h14","ad":{"c":"cr","i":"x","t":"y","ty":"maybe"}}}`, errRP("h14", 400)},
	{"login numbers", `{"rq":{"id":"h15","a":{"i":1,"t":2}}}`, errRP("h15", 400)},
	{"logout a number", `{"rq":{"id":"h16","lo":5}}`, errRP("h16", 400)},
	{"id a number", `{"rq":{"id":7,"s":{"u":"bob"}}}`, errRP("", 400)},
	{"id an object", `{"m":{"id":{"x":1},"r":"bob"}}`, errRP("", 400)},
	{"get a string", `{"rq":{"id":"h17","get":"pr"}}`, errRP("h17", 400)},
	{"get unknown list", `{"rq":{"id":"h18","get":{"o":"x"}}}`, errRP("h18", 400)},
	{"picture bad t", `{"rq":{"id":"h19","p":{"t":"x"}}}`, errRP("h19", 400)},
	{"group without id", `{"rq":{"id":"h20","g":{"t":"i"}}}`, errRP("h20", 400)},
	{"srq bad t", `{"srq":{"id":"h21","t":"zz"}}`, errRP("h21", 400)},
	{"srq t a number", `{"srq":{"id":"h22","t":5}}`, errRP("h22", 400)},
	{"content an object", `{"m":{"id":"h23","r":"bob","c":{"x":1}}}`, errM("h23", 400)},
	{"dm a string", `{"m":{"id":"h24","dm":"x"}}`, errM("h24", 400)},
	{"st too big", `{"m":{"id":"h25","r":"bob","st":1e400}}`, errM("h25", 400)},
	{"st negative huge", `{"m":{"id":"h26","r":"bob","st":-1e300}}`, errM("h26", 400)},
	{"message without id", `{"m":{"r":"bob","c":"x"}}`, errM("", 400)},
	{"message without receiver", `{"m":{"id":"h27","c":"x"}}`, errM("h27", 400)},
	{"message bad type", `{"m":{"id":"h28","r":"bob","t":"z"}}`, errM("h28", 400)},
	{"message unknown receiver", `{"m":{"id":"h29","r":"nobody"}}`, errM("h29", 404)},
	{"message NUL receiver", `{"m":{"id":"h30","r":"bo\u0000b"}}`, errM("h30", 404)},
	{"dm unknown", `{"m":{"id":"h31","dm":{"id":"zzz"}}}`, errM("h31", 404)},
	{"second login", `{"rq":{"id":"h32","a":{"i":"alice","t":"alice-token"}}}`, `{"rp":{"id":"h32","response":0,"e":{"c":409,"d":"*"}}}`},
	{"NUL username", `{"rq":{"id":"h33","s":{"u":"a\u0000b"}}}`, errRP("h33", 404)},
	{"long username", `{"rq":{"id":"h34","s":{"u":"` + strings.Repeat("z", 5000) + `"}}}`, errRP("h34", 404)},
	{"group id with slash", `{"rq":{"id":"h35","g":{"t":"c","i":"a/b"}}}`, errRP("h35", 400)},
	{"group id too long", `{"rq":{"id":"h36","g":{"t":"c","i":"` + strings.Repeat("g", 200) + `"}}}`, errRP("h36", 400)},
	{"status too long", `{"rq":{"id":"h37","st":{"t":"s","s":"` + strings.Repeat("s", 17<<10) + `"}}}`, errRP("h37", 413)},
	{"create user as non-admin", `{"rq":{"id":"h38","ad":{"c":"cr","i":"x","t":"y"}}}`, errRP("h38", 403)},
}

func TestHostileInputNeverWedges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		for i, tc := range hostile {
			t.Run(tc.name, func(t *testing.T) {
				a.t = t
				a.send(tc.frame)
				a.expect(tc.want)
				a.knock(fmt.Sprintf("k%d", i))
			})
		}
		a.t = t
		// Binary frames: refused, the connection stays.
		a.sendBinary([]byte(`{"srq":{"id":"bin","t":"k"}}`))
		a.expect(errRP("", 400))
		a.knock("kb")
		a.sendBinary([]byte{0, 1, 2, 0xff})
		a.expect(errRP("", 400))
		a.knock("kb2")
		// The same flood on a connection that is not logged in.
		c := g.dial(t)
		for i, tc := range hostile[:25] { // the ones that fail before any login check
			t.Run("anonymous "+tc.name, func(t *testing.T) {
				c.t = t
				c.send(tc.frame)
				c.expect(tc.want)
				c.knockBeforeLogin(fmt.Sprintf("ka%d", i))
			})
		}
		c.t = t
		// All still fine: a real exchange works and nobody else heard anything.
		a.send(`{"m":{"id":"ok1","r":"bob","c":"still here"}}`)
		a.expect(sr("ok1", "alice"))
		b.expect(msg("ok1", "alice", "bob", "still here"))
		b.quiet(short)
	})
}

func TestPacketTooLarge(t *testing.T) {
	forEachBackendCfg(t, lempside.Config{MaxPacketBytes: 1024}, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		b := g.login(t, "bob")

		// Exactly at the limit: accepted.
		frame := func(id string, size int) string {
			head := `{"m":{"id":"` + id + `","r":"bob","c":"`
			tail := `"}}`
			return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
		}
		f := frame("fit", 1024)
		if len(f) != 1024 {
			t.Fatalf("frame is %d bytes", len(f))
		}
		a.send(f)
		a.expect(sr("fit", "alice"))
		b.expect(msg("fit", "alice", "bob", strings.Repeat("x", 1024-len(`{"m":{"id":"fit","r":"bob","c":""}}`))))

		// One byte over: 413 (no id: the frame is not read), then close 1009.
		a.send(frame("over", 1025))
		a.expect(errRP("", 413))
		a.expectClose(1009)
		b.quiet(short) // nothing delivered

		// Far over (more than the socket buffers hold), even before login.
		// The server reads the rest of the frame for a bounded time only, so
		// on a slow machine the close may come while the client still
		// writes: the write error is not the point.
		c := g.dial(t)
		_ = c.ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat(" ", 1<<20)+`{}`))
		c.expect(errRP("", 413))
		c.expectClose(1009)

		// Binary frames are measured too.
		a = g.login(t, "alice")
		a.sendBinary(make([]byte, 2048))
		a.expect(errRP("", 413))
		a.expectClose(1009)

		// Other connections were not affected.
		b.knock("k1")
	})
}

func TestRelaxedReadmePackets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob", "carol")
		a := g.dial(t)
		a.send(`{ rq:{id:"id",a:{i:"alice",t:"alice-token"}} }`)
		a.expect(`{"rp":{"id":"id","response":1}}`)
		a.send(`{ rq:{id:"f1", af:[{u:"bob",n:"nick1"},{u:"carol",n:"nick2"}]} }`)
		a.expect(`{"rp":{"id":"f1"}}`)
		b := g.dial(t)
		b.send("{\n  rq: {\n    id: 'l2',\n    a: { i: 'bob', t: 'bob-token' }\n  }\n}")
		b.expect(`{"rp":{"id":"l2","response":1}}`)
		a.expect(`{"i":{"li":"bob"}}`)

		a.send(`{ rq:{id:"f2", uf:[{u:"bob",n:"Bobby"}]} }`)
		a.expect(`{"rp":{"id":"f2"}}`)
		a.send(`{ rq:{id:"f3", rf:["carol"]} }`)
		a.expect(`{"rp":{"id":"f3"}}`)
		a.send(`{rq:{id:f4,get:{o:f}}}`)
		a.expect(`{"rp":{"id":"f4","f":[{"u":"bob","n":"Bobby"}]}}`)
		a.send(`{ rq:{id:"s1", s:{u:"bob"}} }`)
		a.expect(`{"rp":{"id":"s1","s":{"u":"bob","v":0}}}`)
		a.send(`{ rq:{id:"p1", p:{t:"s", v:"http://x/a.png"}} }`)
		a.expect(`{"rp":{"id":"p1"}}`)
		b.send(`{ rq:{id:"p2", p:{t:"g", u:"alice"}} }`)
		b.expect(`{"rp":{"id":"p2","p":{"u":"alice","v":"http://x/a.png"}}}`)
		a.send(`{ rq:{id:"st1", st:{t:"s", s:'it\'s "fine"'}} }`)
		a.expect(`{"rp":{"id":"st1"}}`)
		b.send(`{ rq:{id:"st2", st:{t:"g", u:"alice"}} }`)
		b.expect(`{"rp":{"id":"st2","st":{"u":"alice","s":"it's \"fine\""}}}`)
		a.send(`{ rq:{id:"b1", b:{u:"carol"}} }`)
		a.expect(`{"rp":{"id":"b1"}}`)
		a.send(`{ rq:{id:"pr", get:{o:"pr"}} }`)
		a.expect(`{"rp":{"id":"pr","pr":["carol"]}}`)
		a.send(`{ rq:{id:"ub", ub:{username:'carol'}} }`)
		a.expect(`{"rp":{"id":"ub"}}`)

		// Messages, with flags as numbers, booleans and barewords.
		a.send(`{ m:{id:"m1", r:"bob", t:"t", c:"hello", st:1700000000000, p:"1", sc:"1", pc:"1"} }`)
		a.expect(sr("m1", "alice"))
		b.expect(`{"m":{"id":"m1","s":"alice","r":"bob","t":"t","c":"hello","st":1700000000000,"p":"1","sc":"1","pc":"1"}}`)
		a.send(`{m:{id:m2,r:bob,t:l,c:'41.0,29.0',p:1,sc:TRUE,pc:False}}`)
		a.expect(sr("m2", "alice"))
		b.expect(`{"m":{"id":"m2","s":"alice","r":"bob","t":"l","c":"41.0,29.0","st":"*","p":"1","sc":"1","pc":"0"}}`)
		b.send(`{ m:{id:"d1", st:1700000000500, dm:{id:"m1"}} }`)
		a.expect(`{"m":{"id":"d1","s":"bob","r":"alice","st":1700000000500,"dm":{"id":"m1"}}}`)
		b.send(`{ m:{id:'n1', st:1700000000600, nm:{id:'m1'}} }`)
		a.expect(`{"m":{"id":"n1","s":"bob","r":"alice","st":1700000000600,"nm":{"id":"m1"}}}`)

		// Groups and broadcast lists.
		created := ev("c", "grp", "alice", `"n":"groupname"`)
		a.send(`{ rq:{id:"g1", g:{t:"c", i:"grp",n:"groupname", p:"picture", m:["bob"]}}}`)
		a.expectSet(`{"rp":{"id":"g1"}}`, created)
		b.expect(created)
		b.send(`{ rq:{id:"g2", g:{t:"i", i:"grp"}}}`)
		b.expect(`{"rp":{"id":"g2","g":{"i":"grp","n":"groupname","p":"picture","c":"*","m":["alice","bob"],"ad":["alice"],"o":"alice"}}}`)
		b.send(`{ rq:{id:"g3", n:{t:"g", i:"grp"}} }`)
		b.expect(`{"rp":{"id":"g3","n":{"i":"grp","n":"groupname"}}}`)
		b.send(`{ rq:{id:"g4", mt:{i:"grp",t:1900000000000}} }`)
		b.expect(`{"rp":{"id":"g4"}}`)
		b.send(`{ rq:{id:"g5", umt:{i:"grp"}} }`)
		b.expect(`{"rp":{"id":"g5"}}`)
		a.send(`{ rq:{id:"br1", br:{t:"c", i:"bc",n:"broadcastname", p:"picture", m:["bob", "carol"]}}}`)
		a.expect(`{"rp":{"id":"br1"}}`)
		a.send(`{ rq:{id:"br2", n:{t:"g", b:"bc"}} }`)
		a.expect(`{"rp":{"id":"br2","n":{"b":"bc","n":"broadcastname"}}}`)

		// Server requests: README form, o beside srp in the answer.
		a.send(`{srq:{id:"id",t:"t"}}`)
		a.expect(`{"srp":{"id":"id","t":"t","tm":"*"},"o":"*"}`)
		a.send(`{srq:{id:k1,t:k}}`)
		a.expect(`{"srp":{"id":"k1","t":"k"}}`)

		// Relaxed but broken: 400, and the connection stays.
		a.send(`{ rq:{id:"x1", s:{u:"bob"}}, }`)
		a.expect(errRP("", 400))
		a.send(`{ rq:{id:"x2", s:{u:bob"}} }`)
		a.expect(errRP("", 400))
		a.knock("k2")

		a.send(`{ rq:{id:"id", lo:{r:"reason"}} }`)
		a.expectClose(1000)
	})
}

// TestDeepNestingAndBadUTF8: 100,000 levels of nesting (in frames the
// packet limit lets through) and invalid UTF-8 in every place a frame can
// carry it are answered 400 at once, and the connection goes on working.
func TestDeepNestingAndBadUTF8(t *testing.T) {
	const depth = 100_000
	deep := []struct{ name, frame string }{
		{"arrays open", `{"rq":` + strings.Repeat("[", depth)},
		{"arrays balanced", strings.Repeat("[", depth) + strings.Repeat("]", depth)},
		{"in a field", `{"rq":{"id":"d1","s":{"u":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}}`},
		{"objects", strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat(`}`, depth)},
		{"relaxed arrays", `{rq:` + strings.Repeat("[", depth)},
		{"relaxed objects in a message", `{m:{id:d2,r:bob,c:` + strings.Repeat("{a:", depth)},
		{"mixed", `{"m":` + strings.Repeat(`[{"x":`, depth/2)},
	}
	badUTF8 := []struct{ name, frame string }{
		{"in a key", "{\"rq\":{\"id\":\"u1\",\"s\xff\":{\"u\":\"bob\"}}}"},
		{"in a message id", "{\"m\":{\"id\":\"\xff\",\"r\":\"bob\"}}"},
		{"in content", "{\"m\":{\"id\":\"u2\",\"r\":\"bob\",\"c\":\"caf\xc3\"}}"},
		{"overlong slash", "{\"m\":{\"id\":\"u3\",\"r\":\"\xc0\xafbob\"}}"},
		{"outside strings", "{\"rq\":\xfe{\"id\":\"u4\"}}"},
		{"truncated at the end", "{\"srq\":{\"id\":\"u5\",\"t\":\"k\"}}\xe2\x82"},
		{"relaxed bareword", "{m:{id:u6,r:b\xffob}}"},
		{"relaxed single quotes", "{rq:{id:'u7',s:{u:'\xed\xa0\x80'}}}"},
		{"only bad bytes", "\xff\xfe\xfd"},
	}
	forEachBackendCfg(t, lempside.Config{MaxPacketBytes: 1 << 20}, func(t *testing.T, g *gateway) {
		g.users(t, "alice", "bob")
		a := g.login(t, "alice")
		b := g.login(t, "bob")
		for i, tc := range append(deep, badUTF8...) {
			t.Run(tc.name, func(t *testing.T) {
				a.t = t
				start := time.Now()
				a.send(tc.frame)
				got := a.next()
				if !frameMatches([]byte(got), errRP("", 400)) && !strings.Contains(got, `"e":{"c":400`) {
					t.Fatalf("%d-byte frame: got %.200s, want a 400", len(tc.frame), got)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("%d-byte frame answered in %v", len(tc.frame), d)
				}
				a.knock(fmt.Sprintf("k%d", i))
			})
		}
		a.t = t
		a.send(`{"m":{"id":"ok1","r":"bob","c":"still here"}}`)
		a.expect(sr("ok1", "alice"))
		b.expect(msg("ok1", "alice", "bob", "still here"))
		b.quiet(short)
	})
}
