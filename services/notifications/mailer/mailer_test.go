package mailer_test

import (
	"context"
	"errors"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/services/notifications/mailer"
	"github.com/sagittarius-a/sagittarius/services/notifications/mailer/smtptest"
)

func newMailer(t *testing.T, env map[string]string) *mailer.Mailer {
	t.Helper()
	cfg, err := mailer.ConfigFrom(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return mailer.New(cfg)
}

func TestSendThroughARealSMTPConversation(t *testing.T) {
	srv := smtptest.Start(t)
	m := newMailer(t, map[string]string{"SMTP_ADDR": srv.Addr, "SMTP_FROM": "Shop <shop@example.com>"})
	msg := mailer.Message{To: "ann@example.com", Subject: "Your order #1 is confirmed ✓", MessageID: "n-1",
		Text: "Hello,\n.a line starting with a dot\nbye ü\n", Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 || got[0].From != "shop@example.com" || len(got[0].To) != 1 || got[0].To[0] != "ann@example.com" {
		t.Fatalf("received %+v", got)
	}
	head, body, _ := strings.Cut(got[0].Data, "\r\n\r\n")
	for _, want := range []string{"From: \"Shop\" <shop@example.com>", "To: <ann@example.com>", "Message-ID: <n-1@sagittarius>",
		"Subject: =?utf-8?q?Your_order_#1_is_confirmed_=E2=9C=93?=", "Date: Fri, 02 Jan 2026 03:04:05 +0000"} {
		if !strings.Contains(head, want) {
			t.Errorf("headers lack %q:\n%s", want, head)
		}
	}
	text, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if err != nil || string(text) != "Hello,\r\n.a line starting with a dot\r\nbye ü\r\n\r\n" {
		t.Fatalf("body %q (%v)", text, err)
	}
}

func TestFailures(t *testing.T) {
	srv := smtptest.Start(t)
	m := newMailer(t, map[string]string{"SMTP_ADDR": srv.Addr})
	msg := mailer.Message{To: "ann@example.com", Subject: "s", Text: "t"}

	srv.SetMode(smtptest.RefuseMail)
	err := m.Send(context.Background(), msg)
	if err == nil || mailer.MayHaveBeenDelivered(err) || !strings.Contains(err.Error(), "451") {
		t.Fatalf("refused MAIL: %v (may have been delivered: %v)", err, mailer.MayHaveBeenDelivered(err))
	}
	srv.SetMode(smtptest.RefuseAtData)
	if err := m.Send(context.Background(), msg); !mailer.MayHaveBeenDelivered(err) {
		t.Fatalf("refused at the end of DATA: %v, want MayHaveBeenDelivered", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages accepted", n)
	}

	down := smtptest.Start(t)
	down.Close()
	if err := newMailer(t, map[string]string{"SMTP_ADDR": down.Addr}).Send(context.Background(), msg); err == nil || mailer.MayHaveBeenDelivered(err) {
		t.Fatalf("server down: %v", err)
	}
	if err := newMailer(t, nil).Send(context.Background(), msg); !errors.Is(err, mailer.ErrNoServer) {
		t.Fatalf("no server: %v", err)
	}
	if err := m.Send(context.Background(), mailer.Message{To: "ann@example.com\r\nBcc: eve@example.com", Subject: "s"}); err == nil {
		t.Fatal("a recipient with a line break was accepted")
	}
}

func TestConfigFrom(t *testing.T) {
	for _, env := range []map[string]string{
		{"SMTP_ADDR": "no-port"},
		{"SMTP_FROM": "not an address"},
		{"SMTP_ADDR": "127.0.0.1:25", "SMTP_USERNAME": "u"},
		{"SMTP_TIMEOUT": "-1s"},
	} {
		if _, err := mailer.ConfigFrom(func(k string) string { return env[k] }); err == nil {
			t.Errorf("%v: no error", env)
		}
	}
	cfg, err := mailer.ConfigFrom(func(string) string { return "" })
	if err != nil || cfg.Addr != "" || cfg.From.Address != "no-reply@sagittarius.localhost" || mailer.New(cfg).Configured() {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
}
