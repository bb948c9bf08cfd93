package notification_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/services/notifications/notification"
)

func TestNew(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC)
	w, err := notification.New("id-1", "  Ann  ", now)
	if err != nil || w.Name != "Ann" || w.Version != 1 || !w.CreatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("New: %+v %v", w, err)
	}
	for _, name := range []string{"", "   ", strings.Repeat("x", notification.MaxNameLen+1)} {
		var invalid *notification.ValidationError
		if _, err := notification.New("id-2", name, now); !errors.As(err, &invalid) || invalid.Fields[0].Field != "name" {
			t.Errorf("New(%q): %v, want a ValidationError on name", name, err)
		}
	}
}
