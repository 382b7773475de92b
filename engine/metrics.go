package engine

import (
	"strconv"

	"github.com/gobwas/ws"

	"github.com/pushd/pushd/internal/metrics"
)

// nodeMetrics are the node's /metrics series.
type nodeMetrics struct {
	reg *metrics.Registry

	connections       *metrics.Gauge
	accepted          *metrics.Counter
	refused           *metrics.Counter
	setupPauses       *metrics.Counter
	helloTimeouts     *metrics.Counter
	acceptErrors      *metrics.Counter
	handshakeFailures *metrics.Counter
	messages          *metrics.Counter
	hellos            *metrics.Counter
	uaidResets        *metrics.Counter
	registers         *metrics.Counter
	unregisters       *metrics.Counter
	notifications     *metrics.Counter
	acks              *metrics.Counter
	queueDrops        *metrics.Counter
	laneJobs          *metrics.Counter
	superseded        *metrics.Counter
	slowClients       *metrics.Counter
	kicks             *metrics.CounterVec
	closes            *metrics.CounterVec
	puts              *metrics.CounterVec
	putLatency        *metrics.Histogram
	commitLatency     *metrics.Histogram

	calls               *metrics.CounterVec
	ringChanges         *metrics.Counter
	fillWaits           *metrics.Counter
	handoffRecords      *metrics.Counter
	replicationFailures *metrics.Counter
	partitionsDropped   *metrics.Counter
	// notesDropped: replica notes not sent, maxNoteCalls under way.
	notesDropped  *metrics.Counter
	expired       *metrics.Counter
	expiredCopies *metrics.Counter
}

var closeCodes = []string{"1000", "1001", "1002", "1003", "1007", "1008", "1009", "1013", "4001", "4774"}

func newNodeMetrics() *nodeMetrics {
	r := metrics.NewRegistry()
	return &nodeMetrics{
		reg:               r,
		connections:       r.Gauge("pushd_connections", "Open client WebSocket connections."),
		accepted:          r.Counter("pushd_connections_accepted_total", "Client TCP connections accepted."),
		refused:           r.Counter("pushd_connections_refused_total", "Client TCP connections refused at the connection cap."),
		setupPauses:       r.Counter("pushd_accept_pauses_total", "Times an accept loop paused because as many connections were in set-up as -max-setup allows."),
		helloTimeouts:     r.Counter("pushd_hello_answer_timeouts_total", "Connections closed with 1013 because their hello was not answered within -hello-timeout."),
		acceptErrors:      r.Counter("pushd_accept_errors_total", "Failed accepts on the client listener (e.g. out of file descriptors)."),
		handshakeFailures: r.Counter("pushd_handshake_failures_total", "WebSocket opening handshakes refused."),
		messages:          r.Counter("pushd_messages_total", "Client messages received."),
		hellos:            r.Counter("pushd_hellos_total", "Hellos answered."),
		uaidResets:        r.Counter("pushd_uaid_resets_total", "Hellos answered with a new UAID because the server held no registration for a channel the client named."),
		registers:         r.Counter("pushd_registers_total", "Channels registered."),
		unregisters:       r.Counter("pushd_unregisters_total", "Channels unregistered."),
		notifications:     r.Counter("pushd_notifications_sent_total", "UPDATE messages (notification or update) sent to clients."),
		acks:              r.Counter("pushd_acks_total", "Ack messages received."),
		laneJobs:          r.Counter("pushd_wait_lane_jobs_total", "Client messages that may wait on another machine handed, with the rest of their connection's mailbox, from the workers to the waiting lane."),
		queueDrops:        r.Counter("pushd_acks_dropped_total", "Acks dropped because their UAID already had as many queued behind a running operation as it may (the versions stay pending)."),
		superseded:        r.Counter("pushd_superseded_total", "Connections closed because a newer one said hello with the same UAID."),
		slowClients:       r.Counter("pushd_slow_clients_total", "Connections closed because their unsent output grew past the bound."),
		kicks:             r.CounterVec("pushd_kicks_total", "Wake-ups of UAIDs that got a version while not connected, by outcome.", "outcome", "sent", "failed", "dropped"),
		closes:            r.CounterVec("pushd_closes_total", "Connections closed by the server, by WebSocket close code.", "code", closeCodes...),
		puts:              r.CounterVec("pushd_puts_total", "App-server PUTs, by HTTP status.", "status", "200", "202", "400", "404", "405", "413", "429", "500", "503"),
		putLatency:        r.Histogram("pushd_put_duration_seconds", "Time to answer a PUT.", metrics.LatencyBuckets()),
		commitLatency:     r.Histogram("pushd_store_commit_duration_seconds", "Store commit latency (synced and unsynced).", metrics.LatencyBuckets()),

		calls: r.CounterVec("pushd_cluster_calls_total", "Calls to other nodes, by method.", "method",
			"put", "hello", "attach", "register", "unregister", "set_kick", "ack", "ack_flight", "detach", "collect",
			"deliver", "close", "replicate", "replica_ack", "replica_unregister", "export", "presence", "stats", "adopt", "replica_drop", "unknown"),
		ringChanges:         r.Counter("pushd_cluster_ring_changes_total", "Member lists put in force."),
		fillWaits:           r.Counter("pushd_cluster_fill_timeouts_total", "Owner operations that gave up waiting for a UAID's records to arrive from its previous holders."),
		handoffRecords:      r.Counter("pushd_cluster_handoff_records_total", "Store records fetched from other nodes after a membership change."),
		replicationFailures: r.Counter("pushd_cluster_replication_failures_total", "Writes refused because a replica did not confirm them."),
		partitionsDropped:   r.Counter("pushd_cluster_partitions_dropped_total", "Ring partitions whose records were deleted after they were handed to their new holders."),
		notesDropped: r.Counter("pushd_cluster_replica_notes_dropped_total",
			"Acks and UAID last-use times not sent to the replicas because 4,096 such calls were already under way (a replica that misses an ack may deliver that version again after a failover)."),
		expired: r.Counter("pushd_uaids_expired_total", "UAIDs dropped with all their records after -uaid-ttl without use."),
		expiredCopies: r.Counter("pushd_uaids_expired_copies_total",
			"Copies of UAIDs owned elsewhere dropped because their owner dropped them after -uaid-ttl."),
	}
}

func (m *nodeMetrics) closeCode(code ws.StatusCode) {
	m.closes.With(strconv.Itoa(int(code))).Inc()
}
