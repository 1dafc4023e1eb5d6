package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// clusterStartTimeout bounds how long the cluster may take to say
// cluster_state:ok after redis-cli --cluster create.
const clusterStartTimeout = 30 * time.Second

// RedisCluster is a Redis Cluster of three masters (no replicas) on
// loopback, owned by one test (StartRedisCluster).
type RedisCluster struct {
	// Addrs are the masters' addresses, 127.0.0.1:<port>.
	Addrs []string
	// URL is a redis+cluster:// URL naming every master as a seed, the form
	// state.RedisConfig and the [state] redis_url key accept.
	URL     string
	Servers []*RedisServer
}

// StartRedisCluster starts three redis-server processes with cluster-enabled
// on free loopback ports, each in a temporary directory of its own, joins
// them with `redis-cli --cluster create ... --cluster-yes` (16384 slots
// split in three) and waits until every node reports cluster_state:ok. The
// servers stop when the test ends. It skips (fails under $CI) when
// redis-server or redis-cli is missing.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	c, missing, err := newRedisCluster(t.TempDir)
	if missing != nil {
		unavailable(t, missing)
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(c.stop)
	return c
}

var sharedCluster struct {
	once    sync.Once
	c       *RedisCluster
	dir     string
	missing error
	err     error
}

// SharedRedisCluster returns a cluster shared by the whole test process,
// started on first use; tests keep apart with UniquePrefix. The package's
// TestMain must call StopSharedRedisCluster after m.Run.
func SharedRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	sharedCluster.once.Do(func() {
		dir, err := os.MkdirTemp("", "lempgw-cluster-*")
		if err != nil {
			sharedCluster.err = err
			return
		}
		sharedCluster.dir = dir
		n := 0
		sharedCluster.c, sharedCluster.missing, sharedCluster.err = newRedisCluster(func() string {
			n++
			d := filepath.Join(dir, strconv.Itoa(n))
			_ = os.Mkdir(d, 0o700)
			return d
		})
	})
	if sharedCluster.missing != nil {
		unavailable(t, sharedCluster.missing)
	}
	if sharedCluster.err != nil {
		t.Fatalf("testenv: %v", sharedCluster.err)
	}
	return sharedCluster.c
}

// StopSharedRedisCluster stops the cluster SharedRedisCluster started, if
// any, and deletes its directory.
func StopSharedRedisCluster() {
	if sharedCluster.c != nil {
		sharedCluster.c.stop()
	}
	if sharedCluster.dir != "" {
		_ = os.RemoveAll(sharedCluster.dir)
	}
}

// newRedisCluster starts the cluster in directories from tempDir. missing
// is set when redis-server or redis-cli is not installed.
func newRedisCluster(tempDir func() string) (c *RedisCluster, missing, err error) {
	bin, err := redisServerBinary()
	if err != nil {
		return nil, err, nil
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		cli = filepath.Join(filepath.Dir(bin), "redis-cli")
		if _, serr := os.Stat(cli); serr != nil {
			return nil, fmt.Errorf("redis-cli not found in PATH (Debian package redis-tools): %w", err), nil
		}
	}
	c = &RedisCluster{}
	for i := range 3 {
		bus, err := freePort()
		if err != nil {
			c.stop()
			return nil, nil, err
		}
		// The cluster bus port defaults to port+10000, which may be taken or
		// beyond 65535 for an ephemeral port: give it a free one.
		s, err := startNew(bin, tempDir(), []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000",
			"--cluster-port", strconv.Itoa(bus),
		})
		if err != nil {
			c.stop()
			return nil, nil, fmt.Errorf("redis cluster node %d: %w", i, err)
		}
		c.Servers = append(c.Servers, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.stop()
		return nil, nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, lastLines(string(out), 10))
	}
	for _, a := range c.Addrs {
		for {
			info, err := command(a, "CLUSTER INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if ctx.Err() != nil {
				c.stop()
				return nil, nil, fmt.Errorf("redis cluster node %s not ok within %v: %v %s", a, clusterStartTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c.URL = "redis+cluster://" + strings.Join(c.Addrs, ",")
	return c, nil, nil
}

func (c *RedisCluster) stop() {
	for _, s := range c.Servers {
		s.Stop()
	}
}

// command sends one inline command to addr and returns its reply (a simple
// or bulk string).
func command(addr, cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	rd := bufio.NewReader(conn)
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("unexpected reply %q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}
