package lempside

import (
	"bytes"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lempgw/lempgw/bridge"
)

// metrics are the LEMP side's Prometheus collectors (lempgw_ prefix).
type metrics struct {
	connections prometheus.Gauge
	logins      *prometheus.CounterVec
	packetsIn   *prometheus.CounterVec
	packetsOut  *prometheus.CounterVec
	errors      *prometheus.CounterVec
	messages    *prometheus.CounterVec
	slow        prometheus.Counter
	limited     *prometheus.CounterVec
	loginChecks prometheus.Counter
	redelivered prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, hub *Hub) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lempgw_lemp_connections",
			Help: "Open LEMP websocket connections."}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_logins_total",
			Help: "LEMP logins by result (ok, failed)."}, []string{"result"}),
		packetsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_packets_in_total",
			Help: "LEMP packets received by type (rq, m, srq)."}, []string{"type"}),
		packetsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_packets_out_total",
			Help: "LEMP frames written to clients, by type (m, rp, srp, i)."}, []string{"type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_errors_total",
			Help: "LEMP error packets sent, by code."}, []string{"code"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_messages_total",
			Help: "LEMP messages submitted, by path and outcome (accepted, refused)."}, []string{"path", "outcome"}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{Name: "lempgw_slow_consumers_total",
			Help: "Connections closed because their outbound queue was full."}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_limited_total",
			Help: "Refusals by abuse limit (messages, requests, logins, connections, queue, group_size, picture)."}, []string{"limit"}),
		loginChecks: prometheus.NewCounter(prometheus.CounterOpts{Name: "lempgw_login_checks_total",
			Help: "Logins whose token was checked (one argon2id verification each)."}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "lempgw_redeliveries_total",
			Help: "Queued items written again to a user because an earlier session on this node had them and they were not acknowledged."}),
	}
	for _, l := range allLimits {
		m.limited.WithLabelValues(l)
	}
	sessions := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lempgw_sessions",
		Help: "Logged-in LEMP sessions on this node."}, func() float64 { return float64(hub.Count()) })
	for _, c := range []prometheus.Collector{m.connections, m.logins, m.packetsIn, m.packetsOut, m.errors, m.messages, m.slow, m.limited, m.loginChecks, m.redelivered, sessions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) login(ok bool) {
	if ok {
		m.logins.WithLabelValues("ok").Inc()
	} else {
		m.logins.WithLabelValues("failed").Inc()
	}
}

func (m *metrics) packetIn(t string) { m.packetsIn.WithLabelValues(t).Inc() }

// packetOut counts a frame written, by its top-level key: every frame the
// gateway writes starts with {"<key>".
func (m *metrics) packetOut(frame []byte) {
	typ := "other"
	if len(frame) > 2 && frame[0] == '{' && frame[1] == '"' {
		if end := bytes.IndexByte(frame[2:min(len(frame), 8)], '"'); end > 0 {
			switch k := string(frame[2 : 2+end]); k {
			case "m", "rp", "srp", "i":
				typ = k
			}
		}
	}
	m.packetsOut.WithLabelValues(typ).Inc()
}
func (m *metrics) packetError(code int) { m.errors.WithLabelValues(strconv.Itoa(code)).Inc() }
func (m *metrics) slowConsumer()        { m.slow.Inc() }
func (m *metrics) limit(l string)       { m.limited.WithLabelValues(l).Inc() }
func (m *metrics) loginCheck()          { m.loginChecks.Inc() }

// message counts a LEMP message by path: "lemp-xmpp" to a Jabber user or
// a room of the XMPP server, else "lemp-lemp" (the XMPP side counts
// xmpp-lemp in lempgw_bridged_messages_total).
func (m *metrics) message(to string, accepted bool) {
	path := "lemp-lemp"
	if bridge.IsJID(to) {
		path = "lemp-xmpp"
	}
	outcome := "refused"
	if accepted {
		outcome = "accepted"
	}
	m.messages.WithLabelValues(path, outcome).Inc()
}
