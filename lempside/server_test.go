package lempside_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/lempside"
	"github.com/lempgw/lempgw/state"
)

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "lempgw test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLS(t *testing.T) {
	cert, key := selfSigned(t)
	g := startGateway(t, state.NewMemory(), lempside.Config{TLSCert: cert, TLSKey: key})
	if !strings.HasPrefix(g.URL, "wss://") {
		t.Fatalf("URL %s is not wss", g.URL)
	}
	g.user(t, "alice", false)
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // self-signed
	ws, _, err := d.Dial(g.URL, nil)
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"rq":{"id":"l","a":{"i":"alice","t":"alice-token"}}}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != `{"rp":{"id":"l","response":1}}` {
		t.Fatalf("login over wss: %s %v", b, err)
	}
	// Plain ws on the TLS port does not get a session.
	if ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(g.URL, "wss"), nil); err == nil {
		ws.Close()
		t.Fatal("plain websocket accepted on the TLS listener")
	}
}

func TestAllowedOrigins(t *testing.T) {
	g := startGateway(t, state.NewMemory(), lempside.Config{AllowedOrigins: []string{"https://app.example.org"}})
	for _, tt := range []struct {
		origin string
		ok     bool
	}{
		{"https://app.example.org", true},
		{"HTTPS://APP.EXAMPLE.ORG", true},
		{"", true}, // not a browser
		{"https://evil.example.org", false},
		{"http://app.example.org", false},
	} {
		h := http.Header{}
		if tt.origin != "" {
			h.Set("Origin", tt.origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(g.URL, h)
		if tt.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", tt.origin, err)
				continue
			}
			ws.Close()
			continue
		}
		if err == nil {
			ws.Close()
			t.Errorf("origin %q accepted", tt.origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: want 403, got %v", tt.origin, resp)
		}
	}
}
