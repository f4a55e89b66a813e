package xdsclient

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the client's Status as Prometheus metrics, read from
// one snapshot per scrape — the sidecar's counterparts of Envoy's
// control_plane.connected_state and update_success/update_rejected:
//
//	xds_connected       1 while a stream to the control plane is up, else 0
//	xds_updates_total   policies from the control plane, by result
//	                    ("applied" or "refused", i.e. NACKed)
func (c *Client) Collector() prometheus.Collector { return collector{c} }

var (
	connectedDesc = prometheus.NewDesc("xds_connected",
		"1 while the sidecar's stream to the xDS control plane is up.", nil, nil)
	updatesDesc = prometheus.NewDesc("xds_updates_total",
		"Policies received from the xDS control plane, by result (applied, refused).", []string{"result"}, nil)
)

type collector struct{ c *Client }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectedDesc
	ch <- updatesDesc
}

func (m collector) Collect(ch chan<- prometheus.Metric) {
	st := m.c.Status()
	connected := 0.0
	if st.Connected {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(connectedDesc, prometheus.GaugeValue, connected)
	ch <- prometheus.MustNewConstMetric(updatesDesc, prometheus.CounterValue, float64(st.Applied), "applied")
	ch <- prometheus.MustNewConstMetric(updatesDesc, prometheus.CounterValue, float64(st.Refused), "refused")
}
