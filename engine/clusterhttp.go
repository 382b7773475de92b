package engine

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/pushd/pushd/cluster"
)

// memberStatus is one member in GET /cluster.
type memberStatus struct {
	Name       string  `json:"name"`
	State      string  `json:"state"` // "alive", or "unreachable" when it did not answer
	GossipAddr string  `json:"gossip_addr,omitempty"`
	RPCAddr    string  `json:"rpc_addr,omitempty"`
	WSAddr     string  `json:"ws_addr,omitempty"`
	HTTPAddr   string  `json:"http_addr,omitempty"`
	RingShare  float64 `json:"ring_share"`
	// UAIDTTL is the member's -uaid-ttl in seconds (0: off); absent when
	// it does not say (an earlier release).
	UAIDTTL *int64 `json:"uaid_ttl,omitempty"`
	// From the member itself:
	Connections    uint64 `json:"connections"`
	UAIDsConnected uint64 `json:"uaids_connected"`
	UAIDsInFlight  uint64 `json:"uaids_in_flight"`
}

// serveCluster is GET /cluster: the member list in force, whether this
// node is still handing over for it, each member's ring share, and its
// connection counts asked from it.
func (n *Node) serveCluster(ctx *fasthttp.RequestCtx) {
	v := n.view.Load()
	members := v.members
	if len(members) == 0 { // standalone
		members = []cluster.Member{{Name: n.self, Meta: cluster.Meta{WSAddr: n.WSAddr().String(), HTTPAddr: n.HTTPAddr().String(),
			UAIDTTL: max(n.cfg.UAIDTTL, 0)}}}
	}
	out := make([]memberStatus, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		out[i] = memberStatus{
			Name: m.Name, State: "alive", GossipAddr: m.Addr, RPCAddr: m.Meta.RPCAddr,
			WSAddr: m.Meta.WSAddr, HTTPAddr: m.Meta.HTTPAddr, RingShare: v.ring.Share(m.Name),
		}
		if ttl := m.Meta.UAIDTTL; ttl >= 0 {
			s := int64(ttl / time.Second)
			out[i].UAIDTTL = &s
		}
		if m.Name == n.self {
			out[i].Connections = uint64(n.nconns.Load())
			out[i].UAIDsConnected = uint64(n.hub.n.Load())
			out[i].UAIDsInFlight = uint64(n.locks.inflight.Load())
			continue
		}
		wg.Add(1)
		go func(st *memberStatus) {
			defer wg.Done()
			resp, err := n.call(st.Name, mStats, nil, deliverTimeout)
			r := rbuf{b: resp}
			conns, uaids, inflight := r.u64(), r.u64(), r.u64()
			if err != nil || r.err() != nil {
				st.State = "unreachable"
				return
			}
			st.Connections, st.UAIDsConnected, st.UAIDsInFlight = conns, uaids, inflight
		}(&out[i])
	}
	wg.Wait()
	body, _ := json.Marshal(struct {
		Node     string `json:"node"`
		Replicas int    `json:"replicas"`
		// Handoff: this node is putting a member list in force (fetching
		// and handing over records, taking presence over).
		Handoff bool           `json:"handoff"`
		Members []memberStatus `json:"members"`
	}{n.self, n.replicas(v), n.handingOff.Load(), out})
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}
