package xmppside

import "github.com/prometheus/client_golang/prometheus"

// metrics are the XMPP side's Prometheus collectors (lempgw_ prefix).
type metrics struct {
	up          prometheus.Gauge
	mucUp       prometheus.Gauge
	roomRejoins prometheus.Counter
	stanzasIn   *prometheus.CounterVec
	stanzasOut  prometheus.Counter
	dropped     *prometheus.CounterVec
	errorsOut   *prometheus.CounterVec
	messages    *prometheus.CounterVec
	presence    *prometheus.CounterVec
	queries     *prometheus.CounterVec
	panics      prometheus.Counter
	reconnects  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lempgw_component_up",
			Help: "1 while the XEP-0114 component stream is up."}),
		roomRejoins: prometheus.NewCounter(prometheus.CounterOpts{Name: "lempgw_server_room_rejoins_total",
			Help: "Joins sent again for LEMP members whose occupant was not in its server room (XEP-0410 self-ping)."}),
		mucUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lempgw_muc_component_up",
			Help: "1 while the MUC service's component stream (xmpp.muc_domain) is up."}),
		stanzasIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_stanzas_in_total",
			Help: "Stanzas read from the component stream, by element."}, []string{"element"}),
		stanzasOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "lempgw_stanzas_out_total",
			Help: "Queued stanzas written to the component stream."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_stanzas_dropped_total",
			Help: "Stanzas dropped (malformed, unsupported, unsendable), by reason."}, []string{"reason"}),
		errorsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_stanza_errors_total",
			Help: "Stanza errors sent back, by condition."}, []string{"condition"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_bridged_messages_total",
			Help: "Messages bridged, by path."}, []string{"path"}),
		presence: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_bridged_presence_total",
			Help: "Presence stanzas bridged, by path and type."}, []string{"path", "type"}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lempgw_remote_queries_total",
			Help: "IQ queries asked of Jabber users (vCard, last activity), by query and outcome."}, []string{"query", "outcome"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "lempgw_component_panics_total",
			Help: "Panics recovered while handling stanzas."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "lempgw_component_reconnects_total",
			Help: "Component stream (re)connections."}),
	}
	for _, c := range []prometheus.Collector{m.up, m.mucUp, m.roomRejoins, m.stanzasIn, m.stanzasOut, m.dropped, m.errorsOut, m.messages, m.presence, m.queries, m.panics, m.reconnects} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) linkUp(up bool) {
	if up {
		m.up.Set(1)
		m.reconnects.Inc()
	} else {
		m.up.Set(0)
	}
}
