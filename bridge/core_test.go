package bridge

import (
	"strings"
	"testing"
)

func TestValidUsername(t *testing.T) {
	for _, ok := range []string{"alice", "a", "bob.smith", "élodie", "x_y-z", strings.Repeat("a", 64)} {
		if err := ValidUsername(ok); err != nil {
			t.Errorf("ValidUsername(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a@b", "a/b", "a b", "a\tb", "a\x00b", "a\u00a0b", strings.Repeat("a", 65), "\xff"} {
		if err := ValidUsername(bad); err == nil {
			t.Errorf("ValidUsername(%q) = nil", bad)
		}
	}
}
