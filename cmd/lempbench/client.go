package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ioTimeout bounds every single read, write and handshake.
const ioTimeout = 30 * time.Second

// conn is one LEMP websocket connection. Writes are serialised; reads happen
// in one goroutine (the scenario's reader).
type conn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

// checkLoopback refuses any URL whose host is not a loopback address: this
// tool is a load generator and must never be pointed at someone else.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url %q: %w", raw, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("url %q: scheme must be ws or wss", raw)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("url %q: only loopback addresses (127.0.0.1) may be targeted", raw)
	}
	return nil
}

// checkLoopbackAddr refuses a host:port whose host is not a loopback
// address (the XMPP server's c2s port).
func checkLoopbackAddr(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("address %q: %w", hostport, err)
	}
	ip := net.ParseIP(host)
	if host == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q: only loopback addresses (127.0.0.1) may be targeted", hostport)
	}
	return nil
}

var dialer = websocket.Dialer{HandshakeTimeout: ioTimeout, ReadBufferSize: 4096, WriteBufferSize: 4096}

func dial(u string) (*conn, error) {
	ws, _, err := dialer.Dial(u, nil)
	if err != nil {
		return nil, err
	}
	return &conn{ws: ws}, nil
}

func (c *conn) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(ioTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// read returns the next frame, failing after d.
func (c *conn) read(d time.Duration) ([]byte, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(d))
	_, b, err := c.ws.ReadMessage()
	return b, err
}

func (c *conn) close() {
	c.wmu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bench done"))
	c.wmu.Unlock()
	_ = c.ws.Close()
}

// lempErr is the error object {c,d}.
type lempErr struct {
	C int    `json:"c"`
	D string `json:"d"`
}

func (e *lempErr) Error() string { return fmt.Sprintf("%d %s", e.C, e.D) }

type idRef struct {
	ID string `json:"id"`
}

// frame is the part of a server frame the bench looks at.
type frame struct {
	M *struct {
		ID string   `json:"id"`
		S  string   `json:"s"`
		R  string   `json:"r"`
		SR *idRef   `json:"sr"`
		DM *idRef   `json:"dm"`
		E  *lempErr `json:"e"`
	} `json:"m"`
	RP *struct {
		ID       string   `json:"id"`
		Response *int     `json:"response"`
		E        *lempErr `json:"e"`
	} `json:"rp"`
	I json.RawMessage `json:"i"`
}

func parse(b []byte) (frame, error) {
	var f frame
	err := json.Unmarshal(b, &f)
	return f, err
}

// request sends an rq frame and waits (bounded) for the rp with its id,
// skipping anything else. It returns the error the server gave, if any.
func (c *conn) request(id string, body []byte) (*lempErr, error) {
	if err := c.send(body); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(ioTimeout)
	for time.Now().Before(deadline) {
		b, err := c.read(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		f, err := parse(b)
		if err != nil {
			return nil, fmt.Errorf("bad frame %s: %w", b, err)
		}
		if f.RP != nil && f.RP.ID == id {
			if f.RP.E != nil {
				return f.RP.E, nil
			}
			if f.RP.Response != nil && *f.RP.Response != 1 {
				return &lempErr{C: 401, D: "login refused"}, nil
			}
			return nil, nil
		}
	}
	return nil, fmt.Errorf("no response to %s within %v", id, ioTimeout)
}

func jsonStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// login dials and logs name in.
func login(u, name, token string) (*conn, error) {
	c, err := dial(u)
	if err != nil {
		return nil, err
	}
	e, err := c.request("login", []byte(`{"rq":{"id":"login","a":{"i":`+jsonStr(name)+`,"t":`+jsonStr(token)+`}}}`))
	if err == nil && e != nil {
		err = fmt.Errorf("login %s: %w", name, e)
	}
	if err != nil {
		_ = c.ws.Close()
		return nil, err
	}
	return c, nil
}

// createUsers creates names (token = tokenFor(name)) through the admin
// connection, pipelining up to window requests. A 409 (user exists) is fine.
func createUsers(admin *conn, names []string, tokenFor func(string) string, window int) error {
	if window < 1 {
		window = 1
	}
	credits := make(chan struct{}, window)
	readErr := make(chan error, 1)
	go func() {
		got := 0
		for got < len(names) {
			b, err := admin.read(ioTimeout)
			if err != nil {
				readErr <- fmt.Errorf("admin: %w", err)
				return
			}
			f, err := parse(b)
			if err != nil || f.RP == nil || len(f.RP.ID) < 3 || f.RP.ID[:3] != "cr-" {
				continue
			}
			if f.RP.E != nil && f.RP.E.C != 409 {
				readErr <- fmt.Errorf("admin create %s: %w", f.RP.ID, f.RP.E)
				return
			}
			got++
			<-credits
		}
		readErr <- nil
	}()
	for i, n := range names {
		select {
		case credits <- struct{}{}:
		case err := <-readErr:
			if err == nil {
				err = errors.New("admin reader stopped early")
			}
			return err
		}
		req := `{"rq":{"id":"cr-` + strconv.Itoa(i) + `","ad":{"c":"cr","i":` + jsonStr(n) + `,"t":` + jsonStr(tokenFor(n)) + `,"ty":0}}}`
		if err := admin.send([]byte(req)); err != nil {
			return err
		}
	}
	return <-readErr
}

// loginAll logs names in with up to par concurrent logins. It returns the
// connections (nil where a login failed) and the failures.
func loginAll(u string, names []string, tokenFor func(string) string, par int) ([]*conn, []error) {
	conns := make([]*conn, len(names))
	var mu sync.Mutex
	var errs []error
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range max(1, par) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c, err := login(u, names[i], tokenFor(names[i]))
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range names {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return conns, errs
}
