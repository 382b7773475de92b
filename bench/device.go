package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/google/uuid"
)

// device is a lean SimplePush client used by the scenarios: a gobwas/ws
// client connection read and written synchronously by its owner.
type device struct {
	conn net.Conn
	rd   *bufio.Reader
	uaid string
}

var dialer = ws.Dialer{Timeout: 10 * time.Second}

func dialDevice(ctx context.Context, addr string) (*device, error) {
	conn, br, _, err := dialer.Dial(ctx, "ws://"+addr+"/")
	if err != nil {
		return nil, fmt.Errorf("bench: dial: %w", err)
	}
	d := &device{conn: conn}
	if br != nil {
		d.rd = br
	} else {
		d.rd = bufio.NewReaderSize(conn, 512)
	}
	return d, nil
}

func (d *device) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return wsutil.WriteClientText(d.conn, b)
}

type rw struct {
	*bufio.Reader
	net.Conn
}

func (r rw) Read(p []byte) (int, error) { return r.Reader.Read(p) }

// recv reads one server message into v.
func (d *device) recv(v any) error {
	b, err := wsutil.ReadServerText(rw{d.rd, d.conn})
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

type reply struct {
	MessageType  string `json:"messageType"`
	Status       int    `json:"status"`
	UAID         string `json:"uaid"`
	PushEndpoint string `json:"pushEndpoint"`
	Updates      []struct {
		ChannelID string `json:"channelID"`
		Version   uint64 `json:"version"`
	} `json:"updates"`
}

// hello says hello and registers chid, returning its endpoint.
func (d *device) helloRegister(chid string) (string, error) {
	if err := d.send(map[string]any{"messageType": "hello", "uaid": "", "channelIDs": []string{}}); err != nil {
		return "", err
	}
	var r reply
	if err := d.recv(&r); err != nil || r.Status != 200 {
		return "", fmt.Errorf("bench: hello: %v %+v", err, r)
	}
	d.uaid = r.UAID
	if err := d.send(map[string]any{"messageType": "register", "channelID": chid}); err != nil {
		return "", err
	}
	if err := d.recv(&r); err != nil || r.Status != 200 {
		return "", fmt.Errorf("bench: register: %v %+v", err, r)
	}
	return r.PushEndpoint, nil
}

// connectDevices connects n devices to wsAddr, each saying hello and
// registering one channel. It returns the devices, their channel IDs and
// their endpoints' paths; the caller closes the devices.
func connectDevices(ctx context.Context, wsAddr string, n int) (devs []*device, chids, paths []string, err error) {
	devs, chids, paths = make([]*device, 0, n), make([]string, n), make([]string, n)
	defer func() {
		if err != nil {
			closeDevices(devs)
		}
	}()
	for i := 0; i < n; i++ {
		d, err := dialDevice(ctx, wsAddr)
		if err != nil {
			return devs, nil, nil, err
		}
		devs = append(devs, d)
		chids[i] = uuid.NewString()
		ep, err := d.helloRegister(chids[i])
		if err != nil {
			return devs, nil, nil, err
		}
		u, err := url.Parse(ep)
		if err != nil {
			return devs, nil, nil, fmt.Errorf("bench: endpoint %q: %w", ep, err)
		}
		paths[i] = u.Path
	}
	return devs, chids, paths, nil
}

func closeDevices(devs []*device) {
	for _, d := range devs {
		d.conn.Close()
	}
}
