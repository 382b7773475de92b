package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/cluster"
	"github.com/pushd/pushd/shardstore"
)

// testClusterKey is the cluster secret of the test clusters.
const testClusterKey = "pushd-test-cluster-key-0123456789"

// member is one node process of a test cluster.
type member struct {
	*proc
	name, gossip, dataDir string
}

// startMember starts node i of a cluster; join lists gossip addresses to
// join (empty for the first node).
func startMember(t *testing.T, i int, dataDir string, join []string, args ...string) *member {
	t.Helper()
	m := &member{name: fmt.Sprintf("node-%d", i), dataDir: dataDir}
	// Port 0: the node binds a free port and logs it. A port picked here
	// and handed over could be taken meanwhile by another test's socket.
	all := []string{"-node-name", m.name, "-cluster-addr", "127.0.0.1:0", "-cluster-key", testClusterKey}
	if len(join) > 0 {
		all = append(all, "-join", join[0])
	}
	m.proc = startPushd(t, dataDir, "", append(all, args...)...)
	m.gossip = m.proc.Gossip
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", m.name, m.Output())
		}
	})
	return m
}

// startTestCluster starts n nodes and waits until every one sees all.
func startTestCluster(t *testing.T, n int, args ...string) []*member {
	t.Helper()
	var ms []*member
	for i := range n {
		var join []string
		if i > 0 {
			join = []string{ms[0].gossip}
		}
		ms = append(ms, startMember(t, i, filepath.Join(t.TempDir(), fmt.Sprint(i)), join, args...))
	}
	waitMembers(t, ms, n)
	return ms
}

// clusterStatus is GET /cluster.
type clusterStatus struct {
	Node     string `json:"node"`
	Replicas int    `json:"replicas"`
	Handoff  bool   `json:"handoff"`
	Members  []struct {
		Name           string  `json:"name"`
		State          string  `json:"state"`
		RingShare      float64 `json:"ring_share"`
		Connections    uint64  `json:"connections"`
		UAIDsConnected uint64  `json:"uaids_connected"`
		UAIDTTL        *int64  `json:"uaid_ttl"`
	} `json:"members"`
}

func getCluster(t *testing.T, httpAddr string) (clusterStatus, error) {
	t.Helper()
	var st clusterStatus
	resp, err := http.Get("http://" + httpAddr + "/cluster")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitMembers waits until every node of ms lists want members.
func waitMembers(t *testing.T, ms []*member, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range ms {
		for {
			st, err := getCluster(t, m.HTTPAddr)
			if err == nil && len(st.Members) == want && !st.Handoff {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: want %d members, got %+v (err %v)", m.name, want, st, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A node may see the change a moment after the others' handoffs.
	time.Sleep(200 * time.Millisecond)
}

// uaidOwnedBy returns a fresh UAID whose owner, among the names, is owner.
func uaidOwnedBy(names []string, owner string) string {
	ring := cluster.NewRing(names, 1)
	for {
		u := uuid.New()
		if ring.Owner(shardstore.RingHash(u)) == owner {
			return u.String()
		}
	}
}

func names(ms []*member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name)
	}
	return out
}

// helloAs connects to wsAddr and says hello with uaid and channelIDs.
func helloAs(t *testing.T, wsAddr, uaid string, chids []string) *device {
	t.Helper()
	d := connect(t, wsAddr)
	if chids == nil {
		chids = []string{}
	}
	m := d.roundTrip(map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": chids})
	if m["uaid"] != uaid || m["status"] != float64(200) {
		t.Fatalf("hello: %v", m)
	}
	return d
}

// helloRetrying is helloAs for a client that, like a real one, connects
// again after a hello answered 500 (the node could not reach the UAID's
// owner, e.g. while member lists change).
func helloRetrying(t *testing.T, wsAddr, uaid string, chids []string) *device {
	t.Helper()
	for try := 0; ; try++ {
		d := connect(t, wsAddr)
		m := d.roundTrip(map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": chids})
		if m["uaid"] == uaid && m["status"] == float64(200) {
			return d
		}
		if m["status"] != float64(500) || try == 10 {
			t.Fatalf("hello: %v", m)
		}
		t.Logf("hello answered %v; connecting again", m)
		d.conn.Close()
		time.Sleep(500 * time.Millisecond)
	}
}

func (d *device) register(chid string) string {
	d.t.Helper()
	m := d.roundTrip(map[string]any{"messageType": "register", "channelID": chid})
	if m["status"] != float64(200) {
		d.t.Fatalf("register: %v", m)
	}
	return endpointPath(d.t, m["pushEndpoint"].(string))
}

func (d *device) ack(chid string, v uint64) {
	d.t.Helper()
	if err := d.conn.WriteJSON(map[string]any{"messageType": "ack", "updates": []any{map[string]any{"channelID": chid, "version": v}}}); err != nil {
		d.t.Fatalf("ack: %v", err)
	}
}

// TestClusterPutThroughAnyNode: a device on node 0, a UAID owned by node
// 2, a PUT through node 1: delivered, and answered 200.
func TestClusterPutThroughAnyNode(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 3)
	uaid := uaidOwnedBy(names(ms), ms[2].name)
	dev := helloAs(t, ms[0].WSAddr, uaid, nil)
	chid := uuid.NewString()
	path := dev.register(chid)

	st, err := putVersion(t.Context(), ms[1].HTTPAddr, path, 7)
	if err != nil || st != 200 {
		t.Fatalf("PUT via node 1: %d %v", st, err)
	}
	if got := decodeUpdates(t, dev.read()); got[chid] != 7 {
		t.Fatalf("notification: %v", got)
	}
	dev.ack(chid, 7)
	// The ack reached the owner: the next PUT is not held up, and is
	// delivered too.
	st, err = putVersion(t.Context(), ms[0].HTTPAddr, path, 8)
	if err != nil || st != 200 {
		t.Fatalf("second PUT: %d %v", st, err)
	}
	if got := decodeUpdates(t, dev.read()); got[chid] != 8 {
		t.Fatalf("notification: %v", got)
	}
}

// TestClusterNewestConnectionWins: the same UAID says hello on node 1
// while connected on node 0; the older connection is closed with 4001.
func TestClusterNewestConnectionWins(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 3)
	uaid := uaidOwnedBy(names(ms), ms[2].name)
	older := helloAs(t, ms[0].WSAddr, uaid, nil)
	chid := uuid.NewString()
	path := older.register(chid)
	newer := helloAs(t, ms[1].WSAddr, uaid, []string{chid})

	_ = older.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := older.conn.ReadMessage()
	if !websocket.IsCloseError(err, 4001) {
		t.Fatalf("older connection: want close 4001, got %v", err)
	}
	st, err := putVersion(t.Context(), ms[2].HTTPAddr, path, 3)
	if err != nil || st != 200 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	if got := decodeUpdates(t, newer.read()); got[chid] != 3 {
		t.Fatalf("newer connection got %v", got)
	}
}

// TestClusterStoredWhileOfflineDeliveredElsewhere: a device registers on
// node 0 and goes away; a PUT through node 1 is stored (202); the device
// comes back through node 2 and gets it.
func TestClusterStoredWhileOfflineDeliveredElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 3)
	for _, owner := range ms {
		uaid := uaidOwnedBy(names(ms), owner.name)
		dev := helloAs(t, ms[0].WSAddr, uaid, nil)
		chid := uuid.NewString()
		path := dev.register(chid)
		dev.conn.Close()
		waitDetached(t, ms)

		st, err := putVersion(t.Context(), ms[1].HTTPAddr, path, 11)
		if err != nil || st != 202 {
			t.Fatalf("owner %s: PUT while offline: %d %v", owner.name, st, err)
		}
		back := helloAs(t, ms[2].WSAddr, uaid, []string{chid})
		if got := decodeUpdates(t, back.read()); got[chid] != 11 {
			t.Fatalf("owner %s: after reconnecting: %v", owner.name, got)
		}
		back.conn.Close()
	}
}

// waitDetached waits until no node counts a connected UAID.
func waitDetached(t *testing.T, ms []*member) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := getCluster(t, ms[0].HTTPAddr)
		total := uint64(0)
		for _, m := range st.Members {
			total += m.UAIDsConnected
		}
		if err == nil && total == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("UAIDs still connected: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterManyClientsAllDelivered: 300 devices spread over three
// nodes, a PUT for each through a random node; every one is delivered.
func TestClusterManyClientsAllDelivered(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 3)
	const devices = 300
	type dev struct {
		*device
		chid, path string
	}
	devs := make([]dev, devices)
	for i := range devs {
		d := helloAs(t, ms[i%3].WSAddr, uuid.NewString(), nil)
		chid := uuid.NewString()
		devs[i] = dev{d, chid, d.register(chid)}
	}
	var wg sync.WaitGroup
	errs := make(chan error, devices)
	for i := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := putVersion(t.Context(), ms[rand.IntN(3)].HTTPAddr, devs[i].path, uint64(100+i))
			if err != nil || st != 200 {
				errs <- fmt.Errorf("device %d: PUT %d %v", i, st, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, d := range devs {
		if got := decodeUpdates(t, d.read()); got[d.chid] != uint64(100+i) {
			t.Fatalf("device %d got %v", i, got)
		}
	}
}

// TestClusterWrongKeyKeptOut: a node with another cluster key cannot
// join, and the members never list it.
func TestClusterWrongKeyKeptOut(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 2)
	cmd := exec.Command(pushdBin, "-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0",
		"-data-dir", t.TempDir(), "-node-name", "intruder", "-cluster-addr", "127.0.0.1:0",
		"-cluster-key", "another-key-entirely-0123456789", "-join", ms[0].gossip)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a node with the wrong key started:\n%s", out)
	}
	if !strings.Contains(string(out), "join cluster") {
		t.Fatalf("want a join failure, got:\n%s", out)
	}
	waitMembers(t, ms, 2)
}

// offlineDevice is a UAID with one registered channel and no connection.
type offlineDevice struct {
	uaid, chid, path string
}

// registerOffline registers count devices through the nodes in turn and
// disconnects them.
func registerOffline(t *testing.T, ms []*member, count int) []offlineDevice {
	t.Helper()
	devs := make([]offlineDevice, count)
	for i := range devs {
		uaid, chid := uuid.NewString(), uuid.NewString()
		d := helloAs(t, ms[i%len(ms)].WSAddr, uaid, nil)
		devs[i] = offlineDevice{uaid, chid, d.register(chid)}
		d.conn.Close()
	}
	waitDetached(t, ms)
	return devs
}

// expectDelivered connects each device through the nodes in turn and
// checks it receives at least the version want[i].
func expectDelivered(t *testing.T, ms []*member, devs []offlineDevice, want []uint64) {
	t.Helper()
	for i, d := range devs {
		if want[i] == 0 {
			continue
		}
		m := ms[i%len(ms)]
		dev := helloRetrying(t, m.WSAddr, d.uaid, []string{d.chid})
		got := decodeUpdates(t, dev.read())
		if got[d.chid] < want[i] {
			t.Errorf("device %d via %s: got version %d, want >= %d", i, m.name, got[d.chid], want[i])
		}
		dev.conn.Close()
	}
}

// TestClusterKill9LosesNoAcceptedVersion SIGKILLs one of three nodes
// during a PUT storm with -replicas 2, and checks that every version
// answered 200/202 is delivered afterwards through the survivors.
func TestClusterKill9LosesNoAcceptedVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 3, "-replicas", "2")
	devs := registerOffline(t, ms, 30)

	storm := startStorm(t, ms, devs)
	time.Sleep(time.Second)
	ms[2].Kill()
	time.Sleep(2 * time.Second)
	accepted := storm.stop()

	survivors := ms[:2]
	waitMembers(t, survivors, 2)
	expectDelivered(t, survivors, devs, accepted)
}

// putStorm PUTs increasing versions to random devices through random
// nodes until stopped, and remembers the highest version answered 200/202
// per device.
type putStorm struct {
	t        *testing.T
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	accepted []uint64
	answered map[int]int
}

func startStorm(t *testing.T, ms []*member, devs []offlineDevice) *putStorm {
	ctx, cancel := context.WithCancel(t.Context())
	s := &putStorm{t: t, cancel: cancel, accepted: make([]uint64, len(devs)), answered: map[int]int{}}
	next := make([]uint64, len(devs))
	for range 16 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for ctx.Err() == nil {
				s.mu.Lock()
				i := rand.IntN(len(devs))
				next[i]++
				v := next[i]
				s.mu.Unlock()
				st, err := putVersion(ctx, ms[rand.IntN(len(ms))].HTTPAddr, devs[i].path, v)
				if err != nil {
					continue // the node is gone; this PUT was never answered
				}
				s.mu.Lock()
				s.answered[st]++
				if st == 200 || st == 202 {
					s.accepted[i] = max(s.accepted[i], v)
				}
				s.mu.Unlock()
			}
		}()
	}
	return s
}

// stop ends the storm and returns the highest accepted version per device.
func (s *putStorm) stop() []uint64 {
	s.cancel()
	s.wg.Wait()
	s.t.Logf("PUT answers: %v", s.answered)
	return s.accepted
}

// TestClusterJoinWhilePending: a fourth node joins while versions are
// pending for offline devices; all are delivered, also to devices that
// come back through the new node.
func TestClusterJoinWhilePending(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 3, "-handoff-grace", "1s")
	devs := registerOffline(t, ms, 40)
	want := make([]uint64, len(devs))
	for i, d := range devs {
		st, err := putVersion(t.Context(), ms[i%3].HTTPAddr, d.path, uint64(i+1))
		if err != nil || st != 202 {
			t.Fatalf("PUT %d: %d %v", i, st, err)
		}
		want[i] = uint64(i + 1)
	}
	ms = append(ms, startMember(t, 3, filepath.Join(t.TempDir(), "3"), []string{ms[0].gossip}, "-handoff-grace", "1s"))
	waitMembers(t, ms, 4)
	// The old nodes delete what they handed to the new one.
	deadline := time.Now().Add(20 * time.Second)
	for dropped := 0.0; dropped == 0; {
		for _, m := range ms[:3] {
			dropped += metric(t, m.HTTPAddr, "pushd_cluster_partitions_dropped_total")
		}
		if time.Now().After(deadline) {
			t.Fatal("no node dropped the partitions it handed over")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Device i comes back through node i%4: a quarter through the new one.
	expectDelivered(t, ms, devs, want)
}

// TestClusterGracefulLeave: a node stopped with SIGTERM during a PUT
// storm hands its UAIDs over; its clients are closed with 1001, reconnect
// elsewhere and get every version, as do offline devices.
func TestClusterGracefulLeave(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 3)
	devs := registerOffline(t, ms, 30)
	want := make([]uint64, len(devs))
	for i, d := range devs {
		st, err := putVersion(t.Context(), ms[i%3].HTTPAddr, d.path, uint64(i+1))
		if err != nil || st != 202 {
			t.Fatalf("PUT %d: %d %v", i, st, err)
		}
		want[i] = uint64(i + 1)
	}
	// A device connected to the node that leaves.
	uaid := uaidOwnedBy(names(ms), ms[2].name)
	onLeaver := helloAs(t, ms[2].WSAddr, uaid, nil)
	chid := uuid.NewString()
	path := onLeaver.register(chid)

	storm := startStorm(t, ms, devs)
	time.Sleep(time.Second)
	if !ms[2].Stop(30 * time.Second) {
		t.Fatal("node did not stop")
	}
	_ = onLeaver.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := onLeaver.conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("client of the leaving node: want close 1001, got %v", err)
	}
	survivors := ms[:2]
	waitMembers(t, survivors, 2)
	time.Sleep(time.Second)
	for i, v := range storm.stop() {
		want[i] = max(want[i], v)
	}
	st, err := putVersion(t.Context(), ms[0].HTTPAddr, path, 9)
	if err != nil || st != 202 {
		t.Fatalf("PUT after leave: %d %v", st, err)
	}
	back := helloAs(t, ms[1].WSAddr, uaid, []string{chid})
	if got := decodeUpdates(t, back.read()); got[chid] != 9 {
		t.Fatalf("reconnected client got %v", got)
	}
	expectDelivered(t, survivors, devs, want)
}

// TestClusterRESTPolling: a REST client registers through node 0 a UAID
// owned by node 2, long-polls node 1, and gets a version PUT through node
// 0; its ack through node 2 ends the flight.
func TestClusterRESTPolling(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 3)
	uaid := uaidOwnedBy(names(ms), ms[2].name)
	chid := uuid.NewString()
	resp, err := http.Post("http://"+ms[0].HTTPAddr+"/v1/register", "application/json",
		strings.NewReader(fmt.Sprintf(`{"uaid":%q,"channelID":%q}`, uaid, chid)))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct{ PushEndpoint string }
	err = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("register: %d %v", resp.StatusCode, err)
	}
	path := endpointPath(t, reg.PushEndpoint)

	polled := make(chan map[string]map[string]uint64, 1)
	go func() {
		resp, err := http.Get("http://" + ms[1].HTTPAddr + "/v1/updates?wait=20s&uaid=" + uaid)
		if err != nil {
			polled <- nil
			return
		}
		defer resp.Body.Close()
		var packet map[string]map[string]uint64
		_ = json.NewDecoder(resp.Body).Decode(&packet)
		polled <- packet
	}()
	time.Sleep(300 * time.Millisecond) // the poll is waiting
	if st, err := putVersion(t.Context(), ms[0].HTTPAddr, path, 21); err != nil || st != 202 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	select {
	case packet := <-polled:
		if packet[uaid][chid] != 21 {
			t.Fatalf("poll answered %v", packet)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long poll did not return the version")
	}
	resp, err = http.Post("http://"+ms[2].HTTPAddr+"/v1/ack", "application/json",
		strings.NewReader(fmt.Sprintf(`{"uaids":[%q]}`, uaid)))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("ack: %v %v", resp, err)
	}
	resp.Body.Close()
	// Acked: a poll now finds nothing, and a new version is not held up.
	resp, err = http.Get("http://" + ms[0].HTTPAddr + "/v1/updates?uaid=" + uaid)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("poll after ack: %v %v", resp, err)
	}
	resp.Body.Close()
	if st, err := putVersion(t.Context(), ms[1].HTTPAddr, path, 22); err != nil || st != 202 {
		t.Fatalf("PUT after ack: %d %v", st, err)
	}
}

// metric reads one unlabelled series from a node's /metrics.
func metric(t *testing.T, httpAddr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s", name)
	return 0
}

// TestClusterTwoConnectionsOnOneEdge: two connections for one UAID on the
// same non-owner node. A hello that resets to a new UAID leaves the first
// connection reachable; a second hello with the UAID closes the first
// with 4001 and takes its versions.
func TestClusterTwoConnectionsOnOneEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 3)
	uaid := uaidOwnedBy(names(ms), ms[2].name)
	first := helloAs(t, ms[1].WSAddr, uaid, nil)
	chid := uuid.NewString()
	path := first.register(chid)

	// A connection naming a channel the server does not know starts over.
	other := connect(t, ms[1].WSAddr)
	m := other.roundTrip(map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": []string{uuid.NewString()}})
	if m["status"] != float64(200) || m["uaid"] == uaid {
		t.Fatalf("hello with an unknown channel: %v", m)
	}
	if st, err := putVersion(t.Context(), ms[0].HTTPAddr, path, 4); err != nil || st != 200 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	if got := decodeUpdates(t, first.read()); got[chid] != 4 {
		t.Fatalf("first connection got %v", got)
	}
	first.ack(chid, 4)

	second := helloAs(t, ms[1].WSAddr, uaid, []string{chid})
	_ = first.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := first.conn.ReadMessage(); !websocket.IsCloseError(err, 4001) {
		t.Fatalf("first connection: want close 4001, got %v", err)
	}
	if st, err := putVersion(t.Context(), ms[0].HTTPAddr, path, 5); err != nil || st != 200 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	if got := decodeUpdates(t, second.read()); got[chid] != 5 {
		t.Fatalf("second connection got %v", got)
	}
}

// TestClusterUnregisterOutlivesAStaleReplica: a replica that was down when
// a channel was unregistered comes back with its old copy of the
// registration. The owner's tombstone beats that copy in the handoff, so
// once the owner is gone the channel stays unregistered: its endpoint
// answers 404, not 202.
func TestClusterUnregisterOutlivesAStaleReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 2, "-replicas", "2")
	uaid, chid := uuid.NewString(), uuid.NewString()
	d := helloAs(t, ms[0].WSAddr, uaid, nil)
	path := d.register(chid) // durable on both nodes

	ms[1].Kill()
	waitMembers(t, ms[:1], 1)
	if m := d.roundTrip(map[string]any{"messageType": "unregister", "channelID": chid}); m["status"] != float64(200) {
		t.Fatalf("unregister: %v", m)
	}
	d.conn.Close()
	if st, err := putVersion(t.Context(), ms[0].HTTPAddr, path, 1); err != nil || st != 404 {
		t.Fatalf("PUT after unregister: %d %v, want 404", st, err)
	}

	// The replica comes back on its old data and takes the UAIDs over.
	back := startMember(t, 1, ms[1].dataDir, []string{ms[0].gossip}, "-replicas", "2")
	waitMembers(t, []*member{ms[0], back}, 2)
	if !ms[0].Stop(20 * time.Second) {
		t.Fatal("node-0 did not stop")
	}
	waitMembers(t, []*member{back}, 1)
	if st, err := putVersion(t.Context(), back.HTTPAddr, path, 2); err != nil || st != 404 {
		t.Fatalf("PUT through the returned replica: %d %v, want 404", st, err)
	}
}

// TestClusterStuckOwnerHoldsUpOnlyItsUAIDs: a node with one worker whose
// peer stops answering (SIGSTOP) keeps serving the devices of the UAIDs it
// owns itself; the hello waiting on the stuck owner waits in the waiting
// lane, not in the worker.
func TestClusterStuckOwnerHoldsUpOnlyItsUAIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	// One replica: a register of node-0's own UAIDs does not wait on node-1.
	ms := []*member{startMember(t, 0, t.TempDir(), nil, "-workers", "1", "-replicas", "1")}
	ms = append(ms, startMember(t, 1, t.TempDir(), []string{ms[0].gossip}, "-replicas", "1"))
	waitMembers(t, ms, 2)

	ms[1].Pause()
	t.Cleanup(ms[1].Resume)
	stuck := connect(t, ms[0].WSAddr)
	if err := stuck.conn.WriteJSON(map[string]any{"messageType": "hello",
		"uaid": uaidOwnedBy(names(ms), ms[1].name), "channelIDs": []string{}}); err != nil {
		t.Fatal(err)
	}
	d := helloAs(t, ms[0].WSAddr, uaidOwnedBy(names(ms), ms[0].name), nil)
	d.register(uuid.NewString())
	// The other hello is still waiting on its owner, not answered 500.
	_ = stuck.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var m map[string]any
	if err := stuck.conn.ReadJSON(&m); err == nil {
		t.Fatalf("hello answered %v while its owner is stopped", m)
	}
}

// TestClusterAcksOfNothingPendingAreNotReplicated: the owner sends its
// replicas the acks that cleared a pending version, not the ones that
// cleared nothing (unknown channels, versions already acked), which a
// device can send without end.
func TestClusterAcksOfNothingPendingAreNotReplicated(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 2) // -replicas 2: the other node holds every UAID too
	const replicaAcks = `pushd_cluster_calls_total{method="replica_ack"}`
	uaid := uaidOwnedBy(names(ms), ms[0].name)
	dev := helloAs(t, ms[0].WSAddr, uaid, nil)
	chid := uuid.NewString()
	path := dev.register(chid)
	if st, err := putVersion(t.Context(), ms[0].HTTPAddr, path, 3); err != nil || st != 200 {
		t.Fatalf("PUT: %d %v", st, err)
	}
	if got := decodeUpdates(t, dev.read()); got[chid] != 3 {
		t.Fatalf("notification %v, want version 3", got)
	}
	dev.ack(chid, 3)
	for deadline := time.Now().Add(10 * time.Second); metric(t, ms[0].HTTPAddr, replicaAcks) < 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the ack of a pending version was not replicated")
		}
	}
	for range 12 { // 24 messages: within the node's mailbox of 32
		dev.ack(uuid.NewString(), 1)
		dev.ack(chid, 3)
	}
	// Messages of a connection are carried out in order: once this
	// register is answered, the acks before it have been.
	dev.register(uuid.NewString())
	if got := metric(t, ms[0].HTTPAddr, replicaAcks); got != 1 {
		t.Errorf("%v ack replications, want 1: acks that cleared nothing were sent to the replica", got)
	}
}

// TestClusterIdleUAIDExpires: with -uaid-ttl, a UAID nobody uses is
// dropped by its owner after the TTL, and its copy on the other node on
// the owner's word; a UAID whose device stays connected to the other node
// is kept on both, its owner noting its use to the copy.
func TestClusterIdleUAIDExpires(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ms := startTestCluster(t, 2, "-uaid-ttl", "2s") // -replicas 2: both nodes hold every UAID
	owner, other := ms[0], ms[1]
	const (
		expired = "pushd_uaids_expired_total"
		copies  = "pushd_uaids_expired_copies_total"
	)

	idleUAID := uaidOwnedBy(names(ms), owner.name)
	idle := helloAs(t, owner.WSAddr, idleUAID, nil)
	idlePath := idle.register(uuid.NewString())
	idle.conn.Close()

	liveUAID := uaidOwnedBy(names(ms), owner.name)
	live := helloAs(t, other.WSAddr, liveUAID, nil)
	liveChid := uuid.NewString()
	livePath := live.register(liveChid)
	registered := time.Now()

	for deadline := time.Now().Add(30 * time.Second); metric(t, other.HTTPAddr, copies) < 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the copy of the idle UAID was not dropped on its owner's word")
		}
	}
	if got := metric(t, owner.HTTPAddr, expired); got != 1 {
		t.Errorf("owner dropped %v UAIDs, want 1", got)
	}
	// Until well past twice the TTL after its register, when the other
	// node's own sweep would take it, the live UAID's copy stays: its
	// owner's notes keep it in use.
	for time.Since(registered) < 3*2*time.Second {
		if got := metric(t, other.HTTPAddr, expired) + metric(t, other.HTTPAddr, copies); got != 1 {
			t.Fatalf("the other node dropped %v UAIDs, want 1: the connected device's copy went", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st, err := putVersion(t.Context(), other.HTTPAddr, idlePath, 1); err != nil || st != 404 {
		t.Errorf("PUT to the idle UAID: %d %v, want 404", st, err)
	}
	if st, err := putVersion(t.Context(), other.HTTPAddr, livePath, 1); err != nil || st != 200 {
		t.Fatalf("PUT to the connected device: %d %v, want 200", st, err)
	}
	if got := decodeUpdates(t, live.read()); got[liveChid] != 1 {
		t.Errorf("connected device got %v", got)
	}
}

// TestClusterDifferentUAIDTTLIsReported: members gossip their -uaid-ttl;
// GET /cluster lists it, and a node whose peer runs another value warns.
func TestClusterDifferentUAIDTTLIsReported(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	a := startMember(t, 0, filepath.Join(t.TempDir(), "0"), nil, "-uaid-ttl", "1h")
	b := startMember(t, 1, filepath.Join(t.TempDir(), "1"), []string{a.gossip}, "-uaid-ttl", "2h")
	waitMembers(t, []*member{a, b}, 2)
	st, err := getCluster(t, a.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, m := range st.Members {
		if m.UAIDTTL == nil {
			t.Fatalf("member %s without uaid_ttl in GET /cluster", m.Name)
		}
		got[m.Name] = *m.UAIDTTL
	}
	if got[a.name] != 3600 || got[b.name] != 7200 {
		t.Errorf("uaid_ttl by member %v, want %s 3600 and %s 7200", got, a.name, b.name)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(a.Output(), "different -uaid-ttl"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node 0 did not warn about node 1's -uaid-ttl")
		}
	}
}
