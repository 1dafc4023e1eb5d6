package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// writeFile writes a config file into a fresh temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lempgw.toml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantErr checks err is one line and holds every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not contain %q", msg, p)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := LoadConfig("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("LoadConfig without sources:\n got %+v\nwant %+v", cfg, want)
	}
	// The contract's values.
	checks := []struct {
		got, want any
	}{
		{cfg.LEMP.Listen, "127.0.0.1:8025"},
		{cfg.LEMP.Path, "/lemp"},
		{cfg.LEMP.MaxPacketBytes, 65536},
		{cfg.LEMP.WriteQueue, 256},
		{cfg.LEMP.PingInterval, 30 * time.Second},
		{len(cfg.LEMP.AllowedOrigins), 0},
		{cfg.HTTP.Listen, "127.0.0.1:9025"},
		{cfg.HTTP.Pprof, false},
		{cfg.State.Backend, "memory"},
		{cfg.State.RedisURL, "redis://127.0.0.1:6379/0"},
		{cfg.State.KeyPrefix, "lempgw:"},
		{cfg.XMPP.ComponentAddress, ""},
		{cfg.XMPP.Enabled(), false},
		{cfg.Delivery.DedupeTTL, 168 * time.Hour},
		{cfg.Delivery.IndexTTL, 720 * time.Hour},
		{cfg.Log.Level, "info"},
		{cfg.Log.Format, "text"},
		{cfg.Auth.HashParams().Threads, uint8(1)},
	}
	for i, c := range checks {
		if c.got != c.want {
			t.Errorf("check %d: got %v, want %v", i, c.got, c.want)
		}
	}
}

func TestLayering(t *testing.T) {
	file := writeFile(t, `
[lemp]
listen = "127.0.0.1:1001"
path = "/file"
allowed_origins = ["https://a.example.org", "https://b.example.org"]
ping_interval = "1m30s"

[state]
key_prefix = "file:"

[log]
level = "warn"
format = "json"

[delivery]
dedupe_ttl = "1h"
`)
	environ := []string{
		"HOME=/root",
		"LEMPGW_LEMP__LISTEN=127.0.0.1:2002",
		"LEMPGW_LOG__LEVEL=error",
		"LEMPGW_XMPP__MUC_DOMAIN=muc.example.org",
		"LEMPGW_CONFIG=/ignored.toml",
		"LEMPGW_TEST_REDIS_URL=redis://ignored",
		"OTHER_LEMPGW_X=1",
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("log.level", "info", "")
	fs.String("lemp.path", "/flagdefault", "") // not set: must not override
	fs.String("token", "", "")                 // not a config key: ignored
	fs.String("http.listen", "", "")
	if err := fs.Parse([]string{"--log.level=debug", "--token", "x", "--http.listen", "127.0.0.1:3003"}); err != nil {
		t.Fatal(err)
	}

	// Defaults only.
	def, err := LoadConfig("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// File over defaults.
	f, err := LoadConfig(file, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.LEMP.Listen != "127.0.0.1:1001" || f.LEMP.Path != "/file" || f.State.KeyPrefix != "file:" ||
		f.Log.Level != "warn" || f.Log.Format != "json" || f.Delivery.DedupeTTL != time.Hour ||
		f.LEMP.PingInterval != 90*time.Second {
		t.Errorf("file layer: %+v", f)
	}
	if want := []string{"https://a.example.org", "https://b.example.org"}; !reflect.DeepEqual(f.LEMP.AllowedOrigins, want) {
		t.Errorf("allowed_origins from file = %q, want %q", f.LEMP.AllowedOrigins, want)
	}
	// Keys the file does not name keep their defaults.
	if f.HTTP.Listen != def.HTTP.Listen || f.Delivery.IndexTTL != def.Delivery.IndexTTL || f.LEMP.MaxPacketBytes != 65536 {
		t.Errorf("file layer lost defaults: %+v", f)
	}
	// Environment over file.
	e, err := LoadConfig(file, environ, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.LEMP.Listen != "127.0.0.1:2002" || e.Log.Level != "error" || e.XMPP.MUCDomain != "muc.example.org" ||
		e.LEMP.Path != "/file" || e.Log.Format != "json" {
		t.Errorf("env layer: %+v", e)
	}
	// Flags over environment; only the ones set.
	all, err := LoadConfig(file, environ, fs)
	if err != nil {
		t.Fatal(err)
	}
	if all.Log.Level != "debug" || all.LEMP.Listen != "127.0.0.1:2002" || all.LEMP.Path != "/file" ||
		all.HTTP.Listen != "127.0.0.1:3003" || all.State.KeyPrefix != "file:" {
		t.Errorf("flag layer: %+v", all)
	}
}

func TestFlagTypes(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.Bool("http.pprof", false, "")
	fs.StringSlice("lemp.allowed_origins", nil, "")
	fs.String("lemp.max-packet-bytes", "", "")
	if err := fs.Parse([]string{"--http.pprof", "--lemp.allowed_origins=https://x.example,https://y.example", "--lemp.max-packet-bytes=1024"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig("", nil, fs)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.HTTP.Pprof || cfg.LEMP.MaxPacketBytes != 1024 ||
		!reflect.DeepEqual(cfg.LEMP.AllowedOrigins, []string{"https://x.example", "https://y.example"}) {
		t.Errorf("flags: %+v", cfg)
	}
}

func TestEnvValues(t *testing.T) {
	cfg, err := LoadConfig("", []string{
		"LEMPGW_LEMP__ALLOWED_ORIGINS= https://a.example , https://b.example:8443/,,",
		"LEMPGW_HTTP__PPROF=true",
		"LEMPGW_LEMP__MAX_PACKET_BYTES=4096",
		"LEMPGW_LEMP__WRITE_QUEUE=16",
		"LEMPGW_LEMP__PING_INTERVAL=10s",
		"LEMPGW_STATE__BACKEND=redis",
		"LEMPGW_STATE__REDIS_URL=redis://:pw@127.0.0.1:6390/2",
		"LEMPGW_AUTH__ARGON2_MEMORY_KIB=64",
		"LEMPGW_AUTH__ARGON2_TIME=1",
		"LEMPGW_AUTH__ADMIN_IDENTITY=Root",
		"LEMPGW_AUTH__ADMIN_TOKEN=tok",
		"LEMPGW_XMPP__COMPONENT_ADDRESS=127.0.0.1:5347",
		"LEMPGW_XMPP__DOMAIN=lemp.example.org",
		"LEMPGW_XMPP__SECRET=s3cret",
		"LEMPGW_DELIVERY__INDEX_TTL=2h",
		"LEMPGW_LOG__FORMAT=JSON",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://a.example", "https://b.example:8443"}; !reflect.DeepEqual(cfg.LEMP.AllowedOrigins, want) {
		t.Errorf("allowed_origins = %q, want %q", cfg.LEMP.AllowedOrigins, want)
	}
	if !cfg.HTTP.Pprof || cfg.LEMP.MaxPacketBytes != 4096 || cfg.LEMP.WriteQueue != 16 || cfg.LEMP.PingInterval != 10*time.Second ||
		cfg.State.Backend != "redis" || cfg.State.RedisURL != "redis://:pw@127.0.0.1:6390/2" ||
		cfg.Auth.Argon2MemoryKiB != 64 || cfg.Auth.Argon2Time != 1 || cfg.Auth.AdminIdentity != "Root" ||
		cfg.XMPP.Secret != "s3cret" || cfg.XMPP.EffectiveMUCSecret() != "s3cret" || !cfg.XMPP.Enabled() ||
		cfg.Delivery.IndexTTL != 2*time.Hour || cfg.Log.Format != "json" {
		t.Errorf("env: %+v", cfg)
	}
	// An empty list variable clears the list.
	file := writeFile(t, "[lemp]\nallowed_origins = [\"https://a.example\"]\n")
	cfg, err = LoadConfig(file, []string{"LEMPGW_LEMP__ALLOWED_ORIGINS="}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.LEMP.AllowedOrigins) != 0 {
		t.Errorf("allowed_origins = %q, want empty", cfg.LEMP.AllowedOrigins)
	}
}

func TestUnknownKeys(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		environ    []string
		want       []string
	}{
		{name: "file key", file: "[lemp]\nlistn = \"127.0.0.1:1\"\n", want: []string{`config: `, `unknown key "lemp.listn"`}},
		{name: "file section", file: "[lmep]\nlisten = \"127.0.0.1:1\"\n", want: []string{`unknown key "lmep"`}},
		{name: "empty section", file: "[nope]\n", want: []string{`unknown key "nope"`}},
		{name: "top-level key", file: "listen = \"127.0.0.1:1\"\n", want: []string{`unknown key "listen"`}},
		{name: "section as value", file: "lemp = 5\n", want: []string{`"lemp" must be a table`}},
		{name: "nested too deep", file: "[lemp.listen]\nx = 1\n", want: []string{`lemp.listen`}},
		{name: "case matters", file: "[lemp]\nListen = \"127.0.0.1:1\"\n", want: []string{`unknown key "lemp.Listen"`}},
		{name: "env key", environ: []string{"LEMPGW_LEMP__LISTN=x"}, want: []string{`config: unknown key "lemp.listn"`, "LEMPGW_LEMP__LISTN"}},
		{name: "env single underscore", environ: []string{"LEMPGW_XMPP_SECRET=x"}, want: []string{`unknown key "xmpp_secret"`, "LEMPGW_XMPP_SECRET"}},
		{name: "env section", environ: []string{"LEMPGW_STATE=redis"}, want: []string{`unknown key "state"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := ""
			if tc.file != "" {
				file = writeFile(t, tc.file)
			}
			_, err := LoadConfig(file, tc.environ, nil)
			wantErr(t, err, tc.want...)
		})
	}
}

func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		environ []string
		want    []string
	}{
		{"backend", "[state]\nbackend = \"etcd\"\n", nil, []string{"state.backend", `"etcd"`}},
		{"lemp.listen", "[lemp]\nlisten = \"8025\"\n", nil, []string{"lemp.listen", `"8025"`}},
		{"lemp.listen port", "[lemp]\nlisten = \"127.0.0.1:99999\"\n", nil, []string{"lemp.listen", `"127.0.0.1:99999"`}},
		{"http.listen", "", []string{"LEMPGW_HTTP__LISTEN=localhost"}, []string{"http.listen", `"localhost"`}},
		{"path", "[lemp]\npath = \"lemp\"\n", nil, []string{"lemp.path", `"lemp"`}},
		{"max_packet_bytes small", "[lemp]\nmax_packet_bytes = 100\n", nil, []string{"lemp.max_packet_bytes", `"100"`}},
		{"max_packet_bytes type", "", []string{"LEMPGW_LEMP__MAX_PACKET_BYTES=lots"}, []string{"lemp.max_packet_bytes", `"lots"`, "integer"}},
		{"max_packet_bytes float", "[lemp]\nmax_packet_bytes = 1.5\n", nil, []string{"lemp.max_packet_bytes", `"1.5"`}},
		{"tls_cert without key", "[lemp]\ntls_cert = \"c.pem\"\n", nil, []string{"lemp.tls_cert", `"c.pem"`, "tls_key"}},
		{"tls_key without cert", "[lemp]\ntls_key = \"k.pem\"\n", nil, []string{"lemp.tls_key", `"k.pem"`}},
		{"origin", "[lemp]\nallowed_origins = [\"example.org\"]\n", nil, []string{"lemp.allowed_origins", `"example.org"`}},
		{"origins type", "[lemp]\nallowed_origins = [1]\n", nil, []string{"lemp.allowed_origins"}},
		{"origin path", "[lemp]\nallowed_origins = [\"https://a.example/app\"]\n", nil, []string{"lemp.allowed_origins", `"https://a.example/app"`}},
		{"write_queue", "[lemp]\nwrite_queue = 0\n", nil, []string{"lemp.write_queue", `"0"`}},
		{"ping_interval", "[lemp]\nping_interval = \"soon\"\n", nil, []string{"lemp.ping_interval", `"soon"`, "duration"}},
		{"ping_interval number", "[lemp]\nping_interval = 30\n", nil, []string{"lemp.ping_interval", `"30"`, "duration"}},
		{"ping_interval zero", "", []string{"LEMPGW_LEMP__PING_INTERVAL=0s"}, []string{"lemp.ping_interval", `"0s"`}},
		{"dedupe_ttl", "[delivery]\ndedupe_ttl = \"1 week\"\n", nil, []string{"delivery.dedupe_ttl", `"1 week"`}},
		{"index_ttl", "", []string{"LEMPGW_DELIVERY__INDEX_TTL=-1h"}, []string{"delivery.index_ttl", `"-1h"`}},
		{"pprof", "", []string{"LEMPGW_HTTP__PPROF=maybe"}, []string{"http.pprof", `"maybe"`}},
		{"log level", "[log]\nlevel = \"verbose\"\n", nil, []string{"log.level", `"verbose"`}},
		{"log format", "", []string{"LEMPGW_LOG__FORMAT=xml"}, []string{"log.format", `"xml"`}},
		{"string type", "[lemp]\nlisten = 8025\n", nil, []string{"lemp.listen", `"8025"`, "string"}},
		{"component without domain", "[xmpp]\ncomponent_address = \"127.0.0.1:5347\"\nsecret = \"s\"\n", nil, []string{"xmpp.domain", "component_address"}},
		{"component without secret", "[xmpp]\ncomponent_address = \"127.0.0.1:5347\"\ndomain = \"lemp.example.org\"\n", nil, []string{"xmpp.secret", "component_address"}},
		{"component address", "[xmpp]\ncomponent_address = \"xmpp.example.org\"\ndomain = \"d.example\"\nsecret = \"s\"\n", nil, []string{"xmpp.component_address", `"xmpp.example.org"`}},
		{"domain", "[xmpp]\ndomain = \"a@b\"\n", nil, []string{"xmpp.domain", `"a@b"`}},
		{"redis without url", "[state]\nbackend = \"redis\"\nredis_url = \"\"\n", nil, []string{"state.redis_url", `""`, "redis"}},
		{"redis url", "[state]\nbackend = \"redis\"\nredis_url = \"http://u:hunter2@host/\"\n", nil, []string{"state.redis_url", `"http://u:***@host/"`}},
		{"admin half", "[auth]\nadmin_identity = \"root\"\n", nil, []string{"auth.admin_token"}},
		{"admin name", "[auth]\nadmin_identity = \"root@x\"\nadmin_token = \"t\"\n", nil, []string{"auth.admin_identity", `"root@x"`}},
		{"argon2 memory", "[auth]\nargon2_memory_kib = 4\n", nil, []string{"auth.argon2_memory_kib", `"4"`}},
		{"argon2 negative", "[auth]\nargon2_time = -1\n", nil, []string{"auth.argon2_time", `"-1"`}},
		{"argon2 time", "", []string{"LEMPGW_AUTH__ARGON2_TIME=0"}, []string{"auth.argon2_time", `"0"`}},
		{"secret type", "[xmpp]\nsecret = 12345\n", nil, []string{"xmpp.secret", `"***"`}},
		{"toml syntax", "[lemp\nlisten = 1\n", nil, []string{"lempgw.toml:1:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := ""
			if tc.file != "" {
				file = writeFile(t, tc.file)
			}
			_, err := LoadConfig(file, tc.environ, nil)
			wantErr(t, err, append([]string{"config: "}, tc.want...)...)
			if err != nil && (strings.Contains(err.Error(), "12345") || strings.Contains(err.Error(), "hunter2")) {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.toml"), nil, nil)
	wantErr(t, err, "config: ", "nope.toml")
}

func TestNormalization(t *testing.T) {
	cfg, err := LoadConfig("", []string{"LEMPGW_STATE__BACKEND=Memory", "LEMPGW_LOG__LEVEL=DEBUG"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.State.Backend != "memory" || cfg.Log.Level != "debug" {
		t.Errorf("not normalized: %+v", cfg)
	}
}

func TestMasked(t *testing.T) {
	cfg := DefaultConfig()
	cfg.XMPP.Secret = "s3cret"
	cfg.XMPP.MUCSecret = "mucs3cret"
	cfg.Auth.AdminToken = "adm1n"
	cfg.Auth.AdminIdentity = "root"
	cfg.State.RedisURL = "redis://user:p4ss@10.0.0.5:6379/3"
	cfg.LEMP.AllowedOrigins = []string{"https://a.example"}
	m := cfg.Masked()
	if m.XMPP.Secret != "***" || m.XMPP.MUCSecret != "***" || m.Auth.AdminToken != "***" {
		t.Errorf("secrets not masked: %+v", m)
	}
	if m.State.RedisURL != "redis://user:***@10.0.0.5:6379/3" {
		t.Errorf("redis_url masked as %q", m.State.RedisURL)
	}
	if m.Auth.AdminIdentity != "root" || m.LEMP.Listen != cfg.LEMP.Listen {
		t.Errorf("non-secrets changed: %+v", m)
	}
	// The original is untouched, and the copy does not share the list.
	if cfg.XMPP.Secret != "s3cret" || cfg.State.RedisURL != "redis://user:p4ss@10.0.0.5:6379/3" {
		t.Errorf("Masked changed the original: %+v", cfg)
	}
	m.LEMP.AllowedOrigins[0] = "x"
	if cfg.LEMP.AllowedOrigins[0] != "https://a.example" {
		t.Error("Masked shares allowed_origins")
	}
	// Password-only URL; empty secrets stay empty; no password, no change.
	for in, want := range map[string]string{
		"redis://:p4ss@127.0.0.1:6379/0": "redis://:***@127.0.0.1:6379/0",
		"redis://127.0.0.1:6379/0":       "redis://127.0.0.1:6379/0",
		"rediss://u@h:1/0":               "rediss://u@h:1/0",
		"":                               "",
	} {
		if got := maskURL(in); got != want {
			t.Errorf("maskURL(%q) = %q, want %q", in, got, want)
		}
	}
	if d := DefaultConfig().Masked(); d.XMPP.Secret != "" || d.Auth.AdminToken != "" {
		t.Errorf("empty secrets masked: %+v", d)
	}
	out := string(marshalTOML(m)) + string(marshalJSON(m))
	for _, s := range []string{"s3cret", "mucs3cret", "adm1n", "p4ss"} {
		if strings.Contains(out, s) {
			t.Errorf("marshalled masked config shows %q", s)
		}
	}
}

// The TOML that config check prints loads back to the same configuration.
func TestMarshalRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LEMP.AllowedOrigins = []string{"https://a.example", "https://b.example"}
	cfg.LEMP.PingInterval = 90 * time.Second
	cfg.Delivery.DedupeTTL = 1500 * time.Millisecond
	cfg.XMPP = XMPPConfig{ComponentAddress: "127.0.0.1:5347", Domain: "lemp.example.org", Secret: `q"uo\te`, MUCDomain: "muc.example.org"}
	cfg.HTTP.Pprof = true
	back, err := LoadConfig(writeFile(t, string(marshalTOML(cfg))), nil, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, marshalTOML(cfg))
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, cfg)
	}
	for d, want := range map[time.Duration]string{
		168 * time.Hour: "168h", 30 * time.Second: "30s", 90 * time.Minute: "1h30m",
		time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
