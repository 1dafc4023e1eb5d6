package main

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
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lempgw/lempgw/internal/testenv"
)

// testPKI is a throwaway certificate authority and one server certificate
// it signed for 127.0.0.1 and localhost, as PEM files in a temporary
// directory.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lempgw test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "server.pem"),
		keyFile:  filepath.Join(dir, "server-key.pem"),
		pool:     x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	for _, f := range []struct {
		name, typ string
		der       []byte
	}{{p.caFile, "CERTIFICATE", caDER}, {p.certFile, "CERTIFICATE", der}, {p.keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.name, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestRedissAndWSS runs the real binary with its state on Redis over TLS
// (a rediss:// URL to a redis-server that only speaks TLS on that port,
// its certificate from a private CA given by SSL_CERT_FILE) and its LEMP
// listener on wss, and checks a client that verifies the certificate logs
// in and gets a server receipt (the message was written over TLS). The
// certificate is verified: without the CA, the same command fails with a
// one-line error.
func TestRedissAndWSS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary against a real redis-server")
	}
	pki := newTestPKI(t)
	tlsAddr := freeAddr(t)
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	// The plain port stays for testenv's PING; the gateway uses the TLS one.
	testenv.StartRedis(t, "--tls-port", tlsPort, "--tls-cert-file", pki.certFile, "--tls-key-file", pki.keyFile,
		"--tls-ca-cert-file", pki.caFile, "--tls-auth-clients", "no")
	redissURL := "rediss://" + tlsAddr + "/0"
	prefix := testenv.UniquePrefix(t)
	storeEnv := []string{"LEMPGW_STATE__BACKEND=redis", "LEMPGW_STATE__REDIS_URL=" + redissURL, "LEMPGW_STATE__KEY_PREFIX=" + prefix}
	lempgw := func(extraEnv []string, args ...string) (string, error) {
		cmd := exec.Command(lempgwBinary(t), args...)
		cmd.Env = append(append(cleanEnv(), storeEnv...), extraEnv...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}

	// Without the CA: refused, one line, naming the address.
	out, err := lempgw([]string{"SSL_CERT_FILE=/dev/null", "SSL_CERT_DIR=/nonexistent"}, "user", "list")
	if err == nil || strings.Contains(out, "\n") || !strings.Contains(out, tlsAddr) || !strings.Contains(out, "certificate") {
		t.Fatalf("user list over rediss without the CA: %v: %q, want a one-line certificate error naming %s", err, out, tlsAddr)
	}
	t.Logf("unknown CA: %s", out)

	withCA := []string{"SSL_CERT_FILE=" + pki.caFile}
	for _, u := range []string{"alice", "bob"} {
		if out, err := lempgw(withCA, "user", "add", u, "--token", u+"-token"); err != nil {
			t.Fatalf("user add %s over rediss: %v: %s", u, err, out)
		}
	}
	g := startGateway(t, append(append([]string{}, storeEnv...), withCA[0],
		"LEMPGW_LEMP__TLS_CERT="+pki.certFile, "LEMPGW_LEMP__TLS_KEY="+pki.keyFile)...)
	g.waitReady(t, 200)
	g.waitLog(t, "lempgw started", "wss://")

	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pki.pool}, HandshakeTimeout: 5 * time.Second}
	url := "wss://" + g.lemp + "/lemp"
	if _, _, err := websocket.DefaultDialer.Dial(url, nil); err == nil {
		t.Fatal("a client without the CA connected to wss")
	}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("wss dial with the CA: %v", err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"rq":{"id":"l","a":{"i":"alice","t":"alice-token"}}}`)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, b, err := ws.ReadMessage(); err != nil || !strings.Contains(string(b), `"response":1`) {
		t.Fatalf("login over wss + rediss: %s %v", b, err)
	}
	for i := range 3 {
		id := "t" + strconv.Itoa(i)
		code, err := exchangeMessage(ws, id, `{"m":{"id":"`+id+`","r":"bob","t":"t","c":"over TLS"}}`)
		if err != nil || code != 0 {
			t.Fatalf("message over wss + rediss: code %d, %v", code, err)
		}
	}
	if out, err := lempgw(withCA, "queue", "bob"); err != nil || strings.Count(out, "over TLS") != 3 {
		t.Fatalf("lempgw queue bob over rediss: %v: %s", err, out)
	}
}
