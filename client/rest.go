package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// The REST polling transport: POST /v1/register per app, then long polls
// of GET /v1/updates; every version callback is followed by POST /v1/ack.

var restHTTP = &http.Client{}

// restSession registers every app and polls until an error or ctx ends.
func (c *Client) restSession(ctx context.Context) (bool, error) {
	c.mu.Lock()
	regs := map[string]string{}
	for name := range c.apps {
		regs[name] = c.state.Channels[name]
	}
	c.mu.Unlock()
	for name, chid := range regs {
		if err := c.restRegister(ctx, name, chid); err != nil {
			return false, err
		}
	}
	c.restRunning.Store(true)
	defer c.restRunning.Store(false)
	for {
		if err := c.restPoll(ctx); err != nil {
			return true, err
		}
	}
}

// restRegister registers one app and hands its endpoint to the app.
func (c *Client) restRegister(ctx context.Context, name, chid string) error {
	body, _ := json.Marshal(map[string]string{"uaid": c.UAID(), "channelID": chid})
	var ans struct {
		UAID         string `json:"uaid"`
		PushEndpoint string `json:"pushEndpoint"`
	}
	if err := c.restDo(ctx, http.MethodPost, "/v1/register", body, &ans); err != nil {
		return err
	}
	c.mu.Lock()
	if ans.UAID != "" && ans.UAID != c.state.UAID {
		c.state.UAID = ans.UAID
		_ = c.saveLocked()
	}
	app := c.apps[name]
	c.mu.Unlock()
	if app.OnEndpoint != nil {
		app.OnEndpoint(ans.PushEndpoint)
	}
	return nil
}

// restPoll long polls once, hands out the versions and acks them.
func (c *Client) restPoll(ctx context.Context) error {
	uaid := c.UAID()
	q := url.Values{"uaid": {uaid}, "wait": {c.cfg.PollWait.String()}}
	var packet map[string]map[string]uint64
	if err := c.restDo(ctx, http.MethodGet, "/v1/updates?"+q.Encode(), nil, &packet); err != nil {
		return err
	}
	if len(packet) == 0 {
		return nil
	}
	for chid, v := range packet[uaid] {
		if app, ok := c.appFor(chid); ok && app.OnVersion != nil {
			app.OnVersion(v)
		}
	}
	body, _ := json.Marshal(map[string][]string{"uaids": {uaid}})
	return c.restDo(ctx, http.MethodPost, "/v1/ack", body, nil)
}

// restDo sends one request and decodes a JSON answer into out (a 204
// leaves it untouched).
func (c *Client) restDo(ctx context.Context, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PollWait+30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.URL+path, rd)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := restHTTP.Do(req)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return nil
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("client: %s %s: %s", method, path, resp.Status)
	case out != nil:
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("client: %s %s: %w", method, path, err)
		}
	}
	return nil
}
