package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/v2"
	gotoml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"

	"github.com/lempgw/lempgw/bridge"
	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
)

// Config is the gateway's whole configuration. The koanf tags are the key
// names of the TOML file (section.key), of the environment (LEMPGW_SECTION__KEY)
// and of the command-line flags (--section.key). docs/configuration.md
// describes every key.
type Config struct {
	LEMP     LEMPConfig     `koanf:"lemp"`
	HTTP     HTTPConfig     `koanf:"http"`
	State    StateConfig    `koanf:"state"`
	Auth     AuthConfig     `koanf:"auth"`
	XMPP     XMPPConfig     `koanf:"xmpp"`
	Delivery DeliveryConfig `koanf:"delivery"`
	Limits   LimitsConfig   `koanf:"limits"`
	Node     NodeConfig     `koanf:"node"`
	Log      LogConfig      `koanf:"log"`
}

// LEMPConfig is the LEMP websocket server.
type LEMPConfig struct {
	Listen         string `koanf:"listen"`           // host:port
	Path           string `koanf:"path"`             // starts with '/'
	MaxPacketBytes int    `koanf:"max_packet_bytes"` // larger frames: 413, connection closed
	TLSCert        string `koanf:"tls_cert"`         // wss when both set
	TLSKey         string `koanf:"tls_key"`
	// AllowedOrigins lists the accepted websocket Origin headers
	// ("https://app.example.org"); empty accepts any origin.
	AllowedOrigins []string      `koanf:"allowed_origins"`
	WriteQueue     int           `koanf:"write_queue"`   // outbound frames queued per connection
	PingInterval   time.Duration `koanf:"ping_interval"` // websocket ping period
	WebClient      bool          `koanf:"web_client"`    // issue 7: serve the demo web client at "/"
}

// HTTPConfig is the ops HTTP server (/healthz, /readyz, /metrics).
type HTTPConfig struct {
	Listen string `koanf:"listen"`
	Pprof  bool   `koanf:"pprof"` // also serve /debug/pprof/
}

// StateConfig selects the state store.
type StateConfig struct {
	Backend   string `koanf:"backend"` // "memory" or "redis"
	RedisURL  string `koanf:"redis_url"`
	KeyPrefix string `koanf:"key_prefix"`
	// Durability: "default" (acknowledged once Redis applied the write) or
	// "fsync" (only while Redis is verified to fsync every write before it
	// answers; durability.go, docs/operations.md "Durability").
	Durability string `koanf:"durability"`
}

// AuthConfig is the bootstrap admin account and the token hashing cost.
type AuthConfig struct {
	AdminIdentity   string `koanf:"admin_identity"`
	AdminToken      string `koanf:"admin_token"`
	Argon2MemoryKiB uint32 `koanf:"argon2_memory_kib"`
	Argon2Time      uint32 `koanf:"argon2_time"`
}

// HashParams are the argon2id parameters for new token hashes.
func (a AuthConfig) HashParams() bridge.HashParams {
	return bridge.HashParams{MemoryKiB: a.Argon2MemoryKiB, Time: a.Argon2Time, Threads: 1}
}

// XMPPConfig is the XEP-0114 component connection.
type XMPPConfig struct {
	ComponentAddress string `koanf:"component_address"` // empty = bridging off
	Domain           string `koanf:"domain"`
	Secret           string `koanf:"secret"`
	MUCDomain        string `koanf:"muc_domain"`
	MUCSecret        string `koanf:"muc_secret"` // empty = Secret
	// Link is how several nodes on one Redis share the component link
	// (docs/operations.md, "The component link across nodes"): "lease" or
	// "every-node". Ignored with the memory store (one node).
	Link     string        `koanf:"link"`
	LeaseTTL time.Duration `koanf:"lease_ttl"` // the link lease's TTL; renewed every third of it
}

// Enabled reports whether XMPP bridging is on.
func (x XMPPConfig) Enabled() bool { return x.ComponentAddress != "" }

// EffectiveMUCSecret is the secret of the MUC component: MUCSecret, or Secret
// when MUCSecret is empty.
func (x XMPPConfig) EffectiveMUCSecret() string {
	if x.MUCSecret != "" {
		return x.MUCSecret
	}
	return x.Secret
}

// DeliveryConfig are the lifetimes of the delivery bookkeeping.
type DeliveryConfig struct {
	DedupeTTL time.Duration `koanf:"dedupe_ttl"` // a re-sent message id is not delivered twice within this
	IndexTTL  time.Duration `koanf:"index_ttl"`  // how long dm/nm for a message still find its sender
}

// LimitsConfig are the abuse limits (docs/configuration.md, [limits]). A
// zero turns a limit off, except for the three sizes, which are required.
type LimitsConfig struct {
	MessageRate           int           `koanf:"message_rate"`  // chat messages per second per connection
	MessageBurst          int           `koanf:"message_burst"` // at once
	RequestRate           int           `koanf:"request_rate"`  // rq and srq per second per connection
	RequestBurst          int           `koanf:"request_burst"`
	FloodFactor           int           `koanf:"flood_factor"`           // refusals (x burst) before close 4429
	LoginFailures         int           `koanf:"login_failures"`         // per identity, before back-off
	LoginAddressFailures  int           `koanf:"login_address_failures"` // per client address, before back-off
	LoginBackoff          time.Duration `koanf:"login_backoff"`          // first back-off, doubled per failure
	LoginBackoffMax       time.Duration `koanf:"login_backoff_max"`
	ConnectionsPerAddress int           `koanf:"connections_per_address"`
	ProxyHeader           string        `koanf:"proxy_header"`    // e.g. X-Forwarded-For; "" = socket peer
	TrustedProxies        []string      `koanf:"trusted_proxies"` // peers whose proxy_header counts; [] = loopback
	MaxGroupMembers       int           `koanf:"max_group_members"`
	MaxQueue              int           `koanf:"max_queue"` // items per user's delivery queue
	MaxPictureBytes       int           `koanf:"max_picture_bytes"`
}

// LEMP is the LEMP side's part of the limits (0 = off there: negative).
func (l LimitsConfig) LEMP() lempside.Limits {
	flood := l.FloodFactor
	if flood == 0 {
		flood = -1 // never closed
	}
	return lempside.Limits{
		MessageRate:           float64(l.MessageRate),
		MessageBurst:          l.MessageBurst,
		RequestRate:           float64(l.RequestRate),
		RequestBurst:          l.RequestBurst,
		FloodFactor:           flood,
		LoginFailures:         l.LoginFailures,
		LoginAddressFailures:  l.LoginAddressFailures,
		LoginBackoff:          l.LoginBackoff,
		LoginBackoffMax:       l.LoginBackoffMax,
		ConnectionsPerAddress: l.ConnectionsPerAddress,
		ProxyHeader:           l.ProxyHeader,
		TrustedProxies:        l.TrustedProxies,
	}
}

// NodeConfig is this gateway's entry in the session registry, which tells
// several gateways on one Redis apart.
type NodeConfig struct {
	ID        string        `koanf:"id"`        // empty: hostname-<random>, chosen at start
	Heartbeat time.Duration `koanf:"heartbeat"` // period of the node's heartbeat
	TTL       time.Duration `koanf:"ttl"`       // a node silent for this long is gone, with its sessions
}

// LogConfig is the process log (stderr).
type LogConfig struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // text or json
}

// DefaultConfig is the embedded configuration "lempgw serve" runs on without
// a file (contract.md, "Configuration").
func DefaultConfig() Config {
	return Config{
		LEMP: LEMPConfig{
			Listen:         "127.0.0.1:8025",
			Path:           "/lemp",
			MaxPacketBytes: 65536,
			AllowedOrigins: []string{},
			WriteQueue:     256,
			PingInterval:   30 * time.Second,
			WebClient:      true,
		},
		HTTP: HTTPConfig{Listen: "127.0.0.1:9025"},
		State: StateConfig{
			Backend:    "memory",
			RedisURL:   "redis://127.0.0.1:6379/0",
			KeyPrefix:  "lempgw:",
			Durability: durabilityDefault,
		},
		Auth: AuthConfig{
			Argon2MemoryKiB: bridge.DefaultHashParams.MemoryKiB,
			Argon2Time:      bridge.DefaultHashParams.Time,
		},
		XMPP: XMPPConfig{Link: "lease", LeaseTTL: 15 * time.Second},
		Delivery: DeliveryConfig{
			DedupeTTL: 168 * time.Hour,
			IndexTTL:  720 * time.Hour,
		},
		Limits: LimitsConfig{
			MessageRate:           50,
			MessageBurst:          500,
			RequestRate:           20,
			RequestBurst:          200,
			FloodFactor:           10,
			LoginFailures:         5,
			LoginAddressFailures:  50,
			LoginBackoff:          time.Second,
			LoginBackoffMax:       15 * time.Minute,
			ConnectionsPerAddress: 256,
			TrustedProxies:        []string{},
			MaxGroupMembers:       bridge.DefaultMaxGroupMembers,
			MaxQueue:              10000,
			MaxPictureBytes:       bridge.MaxProfileBytes,
		},
		Node: NodeConfig{Heartbeat: 10 * time.Second, TTL: 30 * time.Second},
		Log:  LogConfig{Level: "info", Format: "text"},
	}
}

// EnvPrefix starts every environment variable LoadConfig reads.
const EnvPrefix = "LEMPGW_"

// envConfigFile names the config file when --config is not given. It is not
// a config key, so LoadConfig does not read it.
const envConfigFile = "LEMPGW_CONFIG"

// envTestPrefix starts variables reserved for the test suites (such as
// LEMPGW_TEST_REDIS_URL); LoadConfig ignores them.
const envTestPrefix = "LEMPGW_TEST_"

// secretKeys are masked by Masked and in error messages.
var secretKeys = map[string]bool{
	"xmpp.secret":      true,
	"xmpp.muc_secret":  true,
	"auth.admin_token": true,
}

// LoadConfig builds the configuration from, lowest first: the defaults, the
// TOML file (when file is not empty), the LEMPGW_ variables of environ, and
// the flags of flags that were set explicitly and name a config key
// (--lemp.listen; '-' may stand for '_'). Unknown keys and bad values are
// errors; the error is one line and names the key.
func LoadConfig(file string, environ []string, flags *pflag.FlagSet) (Config, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(toMap(DefaultConfig()), ""), nil); err != nil {
		return Config{}, fmt.Errorf("config: defaults: %w", err)
	}

	// TOML file.
	if file != "" {
		m, err := readTOML(file)
		if err != nil {
			return Config{}, err
		}
		if err := checkKeys(m, ""); err != nil {
			return Config{}, fmt.Errorf("config: %s: %w", file, err)
		}
		if err := k.Load(confmap.Provider(m, ""), nil); err != nil {
			return Config{}, fmt.Errorf("config: %s: %w", file, err)
		}
	}

	// Environment.
	var unknown []string
	envp := env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			if name == envConfigFile || strings.HasPrefix(name, envTestPrefix) {
				return "", nil
			}
			key := envKey(name)
			if _, ok := leafIndex[key]; !ok {
				unknown = append(unknown, name)
				return "", nil
			}
			return key, value
		},
	})
	if err := k.Load(envp, nil); err != nil {
		return Config{}, fmt.Errorf("config: environment: %w", err)
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return Config{}, fmt.Errorf("config: unknown key %q (environment variable %s)", envKey(unknown[0]), unknown[0])
	}

	// Flags.
	if flags != nil {
		set := map[string]any{}
		flags.Visit(func(f *pflag.Flag) {
			key := strings.ReplaceAll(f.Name, "-", "_")
			if _, ok := leafIndex[key]; !ok {
				return
			}
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				set[key] = sv.GetSlice()
			} else {
				set[key] = f.Value.String()
			}
		})
		if err := k.Load(confmap.Provider(set, "."), nil); err != nil {
			return Config{}, fmt.Errorf("config: flags: %w", err)
		}
	}

	var cfg Config
	if err := decode(k, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// envKey maps LEMPGW_XMPP__SECRET to xmpp.secret.
func envKey(name string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__", ".")
}

// readTOML parses file; a syntax error names the file, line and column.
func readTOML(file string) (map[string]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	m, err := toml.Parser().Unmarshal(b)
	if err != nil {
		var de *gotoml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("config: %s:%d:%d: %s", file, row, col, oneLine(de.Error()))
		}
		return nil, fmt.Errorf("config: %s: %s", file, oneLine(err.Error()))
	}
	return m, nil
}

// ---- key registry ----

// leaf is one config key.
type leaf struct {
	key   string // section.name
	index []int  // reflect field path in Config
}

var (
	sectionNames []string        // in struct order
	leaves       []leaf          // in struct order
	leafIndex    map[string]leaf // by key
)

func init() {
	leafIndex = map[string]leaf{}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		sf := t.Field(i)
		sec := sf.Tag.Get("koanf")
		sectionNames = append(sectionNames, sec)
		for j := range sf.Type.NumField() {
			ff := sf.Type.Field(j)
			l := leaf{key: sec + "." + ff.Tag.Get("koanf"), index: []int{i, j}}
			leaves = append(leaves, l)
			leafIndex[l.key] = l
		}
	}
}

// checkKeys reports the first key of m (sorted) that is not a config key.
func checkKeys(m map[string]any, prefix string) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		key := n
		if prefix != "" {
			key = prefix + "." + n
		}
		if _, ok := leafIndex[key]; ok {
			continue
		}
		if prefix == "" && slices.Contains(sectionNames, n) {
			sub, ok := m[n].(map[string]any)
			if !ok {
				return fmt.Errorf("%q must be a table ([%s])", key, key)
			}
			if err := checkKeys(sub, key); err != nil {
				return err
			}
			continue
		}
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}

// toMap turns cfg into nested maps of plain values (durations as strings).
func toMap(cfg Config) map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(cfg)
	for _, l := range leaves {
		sec, name, _ := strings.Cut(l.key, ".")
		m, ok := out[sec].(map[string]any)
		if !ok {
			m = map[string]any{}
			out[sec] = m
		}
		m[name] = plainValue(v.FieldByIndex(l.index))
	}
	return out
}

var durationType = reflect.TypeFor[time.Duration]()

func plainValue(fv reflect.Value) any {
	if fv.Type() == durationType {
		return formatDuration(time.Duration(fv.Int()))
	}
	if fv.Kind() == reflect.Slice {
		s := fv.Interface().([]string)
		if s == nil {
			s = []string{}
		}
		return slices.Clone(s)
	}
	return fv.Interface()
}

// formatDuration is time.Duration.String without the trailing zero units:
// 168h rather than 168h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ---- decoding ----

func decode(k *koanf.Koanf, cfg *Config) error {
	v := reflect.ValueOf(cfg).Elem()
	for _, l := range leaves {
		fv := v.FieldByIndex(l.index)
		raw := k.Get(l.key)
		if err := setValue(fv, raw); err != nil {
			return fmt.Errorf("config: invalid value %s for %s: %s", showValue(l.key, raw), l.key, err)
		}
	}
	return nil
}

func setValue(fv reflect.Value, raw any) error {
	if fv.Type() == durationType {
		s, ok := raw.(string)
		if !ok {
			return errors.New(`want a duration string such as "30s", "15m" or "168h"`)
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return errors.New(`want a duration such as "30s", "15m" or "168h"`)
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return errors.New("want a string")
		}
		fv.SetString(s)
	case reflect.Bool:
		switch b := raw.(type) {
		case bool:
			fv.SetBool(b)
		case string:
			p, err := strconv.ParseBool(strings.TrimSpace(b))
			if err != nil {
				return errors.New("want true or false")
			}
			fv.SetBool(p)
		default:
			return errors.New("want true or false")
		}
	case reflect.Int:
		n, err := toInt(raw)
		if err != nil {
			return err
		}
		fv.SetInt(n)
	case reflect.Uint32:
		n, err := toInt(raw)
		if err != nil {
			return err
		}
		if n < 0 || n > math.MaxUint32 {
			return errors.New("want an integer between 0 and 4294967295")
		}
		fv.SetUint(uint64(n))
	case reflect.Slice:
		list, err := toStrings(raw)
		if err != nil {
			return err
		}
		fv.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported type %s", fv.Type())
	}
	return nil
}

func toInt(raw any) (int64, error) {
	errInt := errors.New("want an integer")
	switch n := raw.(type) {
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	case uint32:
		return int64(n), nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, errInt
		}
		return int64(n), nil
	case string:
		p, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if err != nil {
			return 0, errInt
		}
		return p, nil
	}
	return 0, errInt
}

// toStrings reads a list: a TOML array of strings, or a comma-separated
// string (environment, flags); blank elements are dropped.
func toStrings(raw any) ([]string, error) {
	errList := errors.New("want a list of strings")
	out := []string{}
	switch l := raw.(type) {
	case nil:
	case string:
		for s := range strings.SplitSeq(l, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []string:
		for _, s := range l {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []any:
		for _, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, errList
			}
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	default:
		return nil, errList
	}
	return out, nil
}

// showValue formats a value for an error message: quoted, one line, short,
// and masked for secrets.
func showValue(key string, v any) string {
	if secretKeys[key] {
		return `"***"`
	}
	var s string
	switch x := v.(type) {
	case string:
		if key == "state.redis_url" {
			x = maskURL(x)
		}
		s = strconv.Quote(x)
	case []string:
		s = fmt.Sprintf("%q", x)
	default:
		s = strconv.Quote(fmt.Sprint(x))
	}
	if len(s) > 120 {
		s = s[:117] + `..."`
	}
	return s
}

// ---- validation ----

func badValue(key string, v any, format string, args ...any) error {
	return fmt.Errorf("config: invalid value %s for %s: %s", showValue(key, v), key, fmt.Sprintf(format, args...))
}

// validate checks the values and normalizes the enumerations to lower case.
func (c *Config) validate() error {
	l := &c.LEMP
	if err := checkHostPort(l.Listen); err != nil {
		return badValue("lemp.listen", l.Listen, "%s", err)
	}
	if !strings.HasPrefix(l.Path, "/") || strings.ContainsAny(l.Path, " \t\r\n?#") {
		return badValue("lemp.path", l.Path, "want a URL path starting with '/'")
	}
	if l.MaxPacketBytes < 256 || l.MaxPacketBytes > 1<<30 {
		return badValue("lemp.max_packet_bytes", strconv.Itoa(l.MaxPacketBytes), "want an integer between 256 and 1073741824")
	}
	if l.TLSCert != "" && l.TLSKey == "" {
		return badValue("lemp.tls_cert", l.TLSCert, "lemp.tls_key must be set too")
	}
	if l.TLSKey != "" && l.TLSCert == "" {
		return badValue("lemp.tls_key", l.TLSKey, "lemp.tls_cert must be set too")
	}
	for i, o := range l.AllowedOrigins {
		// Origin headers have no path; a trailing '/' is forgiven.
		o = strings.TrimSuffix(o, "/")
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return badValue("lemp.allowed_origins", l.AllowedOrigins[i], `want origins such as "https://app.example.org"`)
		}
		l.AllowedOrigins[i] = o
	}
	if l.WriteQueue < 1 || l.WriteQueue > 1<<20 {
		return badValue("lemp.write_queue", strconv.Itoa(l.WriteQueue), "want an integer between 1 and 1048576")
	}
	if l.PingInterval <= 0 {
		return badValue("lemp.ping_interval", formatDuration(l.PingInterval), "want a positive duration")
	}
	if l.WebClient && l.Path == "/" { // issue 7: the web client is at "/"
		return badValue("lemp.path", l.Path, "the web client is served at /: choose another path or set lemp.web_client = false")
	}

	if err := checkHostPort(c.HTTP.Listen); err != nil {
		return badValue("http.listen", c.HTTP.Listen, "%s", err)
	}

	s := &c.State
	s.Backend = strings.ToLower(strings.TrimSpace(s.Backend))
	switch s.Backend {
	case "memory":
	case "redis":
		if s.RedisURL == "" {
			return badValue("state.redis_url", s.RedisURL, `must be set when state.backend = "redis"`)
		}
		if err := state.CheckRedisURL(s.RedisURL); err != nil {
			return badValue("state.redis_url", s.RedisURL,
				`want a URL such as "redis://127.0.0.1:6379/0", or "redis+cluster://10.0.0.5:7000,10.0.0.6:7000" for a Redis Cluster`)
		}
	default:
		return badValue("state.backend", s.Backend, `want "memory" or "redis"`)
	}
	s.Durability = strings.ToLower(strings.TrimSpace(s.Durability))
	switch s.Durability {
	case durabilityDefault:
	case durabilityFsync:
		if s.Backend != "redis" {
			return badValue("state.durability", s.Durability, `needs state.backend = "redis" (the memory store keeps nothing)`)
		}
	default:
		return badValue("state.durability", s.Durability, `want "default" or "fsync"`)
	}

	a := &c.Auth
	if (a.AdminIdentity == "") != (a.AdminToken == "") {
		if a.AdminIdentity == "" {
			return badValue("auth.admin_identity", a.AdminIdentity, "must be set together with auth.admin_token")
		}
		return badValue("auth.admin_token", a.AdminToken, "must be set together with auth.admin_identity")
	}
	if a.AdminIdentity != "" {
		if err := bridge.ValidUsername(strings.ToLower(a.AdminIdentity)); err != nil {
			return badValue("auth.admin_identity", a.AdminIdentity, "%s", err)
		}
	}
	if a.Argon2MemoryKiB < 8 || a.Argon2MemoryKiB > 1<<21 {
		return badValue("auth.argon2_memory_kib", strconv.FormatUint(uint64(a.Argon2MemoryKiB), 10), "want an integer between 8 and 2097152")
	}
	if a.Argon2Time < 1 || a.Argon2Time > 64 {
		return badValue("auth.argon2_time", strconv.FormatUint(uint64(a.Argon2Time), 10), "want an integer between 1 and 64")
	}

	x := &c.XMPP
	for _, d := range []struct{ key, val string }{{"xmpp.domain", x.Domain}, {"xmpp.muc_domain", x.MUCDomain}} {
		if d.val != "" && !validDomain(d.val) {
			return badValue(d.key, d.val, `want a domain name such as "lemp.example.org"`)
		}
	}
	if x.ComponentAddress != "" {
		if err := checkHostPort(x.ComponentAddress); err != nil {
			return badValue("xmpp.component_address", x.ComponentAddress, "%s", err)
		}
		if x.Domain == "" {
			return badValue("xmpp.domain", x.Domain, "must be set when xmpp.component_address is set")
		}
		if x.Secret == "" {
			return badValue("xmpp.secret", x.Secret, "must be set when xmpp.component_address is set")
		}
		if x.MUCDomain != "" && strings.EqualFold(x.MUCDomain, x.Domain) {
			return badValue("xmpp.muc_domain", x.MUCDomain, "must differ from xmpp.domain")
		}
	}
	x.Link = strings.ToLower(strings.TrimSpace(x.Link))
	if x.Link != "" && x.Link != "lease" && x.Link != "every-node" { // "" = "lease"
		return badValue("xmpp.link", x.Link, `want "lease" or "every-node"`)
	}
	if x.LeaseTTL != 0 && (x.LeaseTTL < 100*time.Millisecond || x.LeaseTTL > time.Hour) { // 0 = 15s
		return badValue("xmpp.lease_ttl", formatDuration(x.LeaseTTL), `want a duration between "100ms" and "1h"`)
	}

	if c.Delivery.DedupeTTL <= 0 {
		return badValue("delivery.dedupe_ttl", formatDuration(c.Delivery.DedupeTTL), "want a positive duration")
	}
	if c.Delivery.IndexTTL <= 0 {
		return badValue("delivery.index_ttl", formatDuration(c.Delivery.IndexTTL), "want a positive duration")
	}

	if err := c.Limits.validate(); err != nil {
		return err
	}

	n := &c.Node
	if n.ID != "" && !validNodeID(n.ID) {
		return badValue("node.id", n.ID, "want 1 to 64 letters, digits, '.', '_' or '-'")
	}
	if n.Heartbeat < 100*time.Millisecond || n.Heartbeat > time.Hour {
		return badValue("node.heartbeat", formatDuration(n.Heartbeat), `want a duration between "100ms" and "1h"`)
	}
	if n.TTL < 2*n.Heartbeat {
		return badValue("node.ttl", formatDuration(n.TTL), "want at least twice node.heartbeat (%s)", formatDuration(n.Heartbeat))
	}

	c.Log.Level = strings.ToLower(strings.TrimSpace(c.Log.Level))
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return badValue("log.level", c.Log.Level, "want debug, info, warn or error")
	}
	c.Log.Format = strings.ToLower(strings.TrimSpace(c.Log.Format))
	switch c.Log.Format {
	case "text", "json":
	default:
		return badValue("log.format", c.Log.Format, "want text or json")
	}
	return nil
}

// validate checks [limits].
func (l *LimitsConfig) validate() error {
	for _, k := range []struct {
		key      string
		v        int
		min, max int
	}{
		{"limits.message_rate", l.MessageRate, 0, 1 << 20},
		{"limits.message_burst", l.MessageBurst, 0, 1 << 20},
		{"limits.request_rate", l.RequestRate, 0, 1 << 20},
		{"limits.request_burst", l.RequestBurst, 0, 1 << 20},
		{"limits.flood_factor", l.FloodFactor, 0, 1 << 10},
		{"limits.login_failures", l.LoginFailures, 0, 1 << 20},
		{"limits.login_address_failures", l.LoginAddressFailures, 0, 1 << 20},
		{"limits.connections_per_address", l.ConnectionsPerAddress, 0, 1 << 24},
		{"limits.max_queue", l.MaxQueue, 0, 1 << 30},
		{"limits.max_group_members", l.MaxGroupMembers, 1, 1 << 20},
		{"limits.max_picture_bytes", l.MaxPictureBytes, 1, 1 << 30},
	} {
		if k.v < k.min || k.v > k.max {
			return badValue(k.key, strconv.Itoa(k.v), "want an integer between %d and %d", k.min, k.max)
		}
	}
	if l.LoginBackoff <= 0 {
		return badValue("limits.login_backoff", formatDuration(l.LoginBackoff), "want a positive duration")
	}
	if l.LoginBackoffMax < l.LoginBackoff {
		return badValue("limits.login_backoff_max", formatDuration(l.LoginBackoffMax), "want at least limits.login_backoff (%s)", formatDuration(l.LoginBackoff))
	}
	if l.ProxyHeader != "" && !validHeaderName(l.ProxyHeader) {
		return badValue("limits.proxy_header", l.ProxyHeader, `want a header name such as "X-Forwarded-For"`)
	}
	if _, err := lempside.ParseTrustedProxies(l.TrustedProxies); err != nil {
		return badValue("limits.trusted_proxies", l.TrustedProxies, `want addresses or CIDR prefixes such as "10.0.0.0/8"`)
	}
	return nil
}

// validHeaderName accepts an HTTP header name: letters, digits and '-'.
func validHeaderName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// checkHostPort accepts host:port with a numeric port (host may be empty).
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New(`want host:port such as "127.0.0.1:8025"`)
	}
	if strings.ContainsAny(host, " \t\r\n/") {
		return errors.New(`want host:port such as "127.0.0.1:8025"`)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return errors.New("want a port number between 0 and 65535")
	}
	return nil
}

// validNodeID accepts 1 to 64 ASCII letters, digits, '.', '_' and '-'.
func validNodeID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// validDomain is a loose check of a DNS name (an XMPP domainpart).
func validDomain(s string) bool {
	if len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("@/\\:\"'<>&", r) {
			return false
		}
	}
	return !strings.Contains(s, "..")
}

// ---- masking ----

const mask = "***"

// Masked returns a copy of c with the secrets replaced by "***": the XMPP
// secrets, the admin token and the password in state.redis_url. Empty
// secrets stay empty, so the output shows whether they are set.
func (c Config) Masked() Config {
	m := c
	m.LEMP.AllowedOrigins = slices.Clone(c.LEMP.AllowedOrigins)
	for _, p := range []*string{&m.XMPP.Secret, &m.XMPP.MUCSecret, &m.Auth.AdminToken} {
		if *p != "" {
			*p = mask
		}
	}
	m.State.RedisURL = maskURL(c.State.RedisURL)
	return m
}

// maskURL replaces the password of a URL by "***"; a string that does not
// parse as a URL but may hold one is masked whole.
func maskURL(s string) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return mask
		}
		return s
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), mask)
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", mask)
		u.RawQuery = q.Encode()
	}
	// url escapes '*'; show the mask as such.
	return strings.ReplaceAll(u.String(), "%2A%2A%2A", mask)
}

// oneLine folds a message onto one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return strings.Join(slices.DeleteFunc(fields, func(f string) bool { return f == "" }), "; ")
}
