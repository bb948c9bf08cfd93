package account

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPasswordHashing(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "correct") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if !CheckPassword(h, "correct horse battery") || !CheckPassword(h2, "correct horse battery") {
		t.Fatal("the right password does not match")
	}
	for _, wrong := range []string{"", "correct horse batterY", "correct horse battery "} {
		if CheckPassword(h, wrong) {
			t.Fatalf("%q matches", wrong)
		}
	}
	for _, bad := range []string{"", "plain", "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", h[:len(h)-4]} {
		if CheckPassword(bad, "correct horse battery") {
			t.Fatalf("unparsable hash %q matches", bad)
		}
	}
	if NeedsRehash(h) || !NeedsRehash("$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5") {
		t.Fatal("NeedsRehash")
	}
}

func TestNew(t *testing.T) {
	now := time.Now()
	a, err := SignUp("id-1", "cust-1", "  Ann@Example.COM ", " Ann ", "long enough", now)
	if err != nil {
		t.Fatal(err)
	}
	if a.Email != "ann@example.com" || a.Name != "Ann" || a.Role != RoleCustomer || a.Version != 1 || a.Status != StatusActive {
		t.Fatalf("account %+v", a)
	}
	if a.Authenticate("long enough") != nil || !errors.Is(a.Authenticate("long enougH"), ErrBadCredentials) {
		t.Fatal("Authenticate")
	}
	a.Status = StatusDisabled
	if !errors.Is(a.Authenticate("long enough"), ErrBadCredentials) {
		t.Fatal("a disabled account signs in")
	}

	_, err = SignUp("id-2", "cust-2", "nope", "", "short", now)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 3 {
		t.Fatalf("err %v", err)
	}
	if _, err := New("id-3", "", "s@example.com", "S", "long enough", Role("root"), now); !errors.As(err, &ve) {
		t.Fatalf("role root: %v", err)
	}
	if _, err := New("id-4", "cust", "s@example.com", "S", "long enough", RoleStaff, now); err == nil {
		t.Fatal("a staff account with a customer id")
	}
	if _, err := SignUp("id-5", "cust", "s@example.com", "S", strings.Repeat("x", 300), now); !errors.As(err, &ve) {
		t.Fatal("a 300-character password was accepted")
	}
	if _, err := SignUp("id-6", "cust", "s@example.com", "S", "        ", now); !errors.As(err, &ve) {
		t.Fatal("a password of spaces was accepted")
	}
}
