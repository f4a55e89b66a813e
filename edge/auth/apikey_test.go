package auth_test

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/contentguard/contentguard/edge/auth"
)

func TestKeyringLookup(t *testing.T) {
	keys := []auth.APIKey{
		{ID: "batch-importer", SHA256: sha256.Sum256([]byte("test")), Scopes: []string{"read", "write"}},
		{ID: "reporting", SHA256: sha256.Sum256([]byte("s3cret-reporting")), Scopes: []string{"read"}},
	}
	ring := auth.NewKeyring(keys)
	keys[0].ID = "mutated after NewKeyring" // the keyring holds its own copy

	tests := []struct {
		presented string
		wantID    string // "" = no match
	}{
		{"test", "batch-importer"},
		{"s3cret-reporting", "reporting"},
		{"tesT", ""},
		{"test ", ""},
		{"", ""},
		{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ""}, // the hash itself is not the key
	}
	for _, tc := range tests {
		got, ok := ring.Lookup(tc.presented)
		if ok != (tc.wantID != "") || got.ID != tc.wantID {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tc.presented, got.ID, ok, tc.wantID)
		}
	}
	if got, _ := ring.Lookup("test"); len(got.Scopes) != 2 || got.Scopes[1] != "write" {
		t.Errorf("scopes %q", got.Scopes)
	}

	var nilRing *auth.Keyring
	if _, ok := nilRing.Lookup("test"); ok {
		t.Error("nil keyring matched")
	}
	if _, ok := auth.NewKeyring(nil).Lookup("test"); ok {
		t.Error("empty keyring matched")
	}
}

func TestKeyringMatchesLastOfManyKeys(t *testing.T) {
	keys := make([]auth.APIKey, 100)
	for i := range keys {
		keys[i] = auth.APIKey{ID: fmt.Sprint("k", i), SHA256: sha256.Sum256([]byte(fmt.Sprint("secret-", i)))}
	}
	ring := auth.NewKeyring(keys)
	for _, i := range []int{0, 50, 99} {
		if got, ok := ring.Lookup(fmt.Sprint("secret-", i)); !ok || got.ID != fmt.Sprint("k", i) {
			t.Errorf("key %d: %q %v", i, got.ID, ok)
		}
	}
}

func TestParseKeyHash(t *testing.T) {
	sum, err := auth.ParseKeyHash("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
	if err != nil || sum != sha256.Sum256([]byte("test")) {
		t.Fatalf("ParseKeyHash: %x %v", sum, err)
	}
	for _, bad := range []string{"", "zz", "9f86d0", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0800"} {
		if _, err := auth.ParseKeyHash(bad); err == nil {
			t.Errorf("ParseKeyHash(%q): no error", bad)
		}
	}
}
