package main

import (
	"testing"
)

func TestConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	good := map[string]string{
		"AMQP_URL":  "amqp://u:p@127.0.0.1:5672/sagittarius",
		"MYSQL_DSN": "u:p@tcp(127.0.0.1:3306)/finance_payments?parseTime=true&loc=UTC",
	}
	c := configFrom(env(good))
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8085" || c.PublicBaseURL != "http://127.0.0.1:8080" || c.QueueType != "classic" {
		t.Fatalf("defaults: %+v", c)
	}
	tests := map[string]map[string]string{
		"no amqp":   {"AMQP_URL": ""},
		"no dsn":    {"MYSQL_DSN": ""},
		"bad dsn":   {"MYSQL_DSN": "nonsense"},
		"bad addr":  {"HTTP_ADDR": "8084"},
		"bad base":  {"PUBLIC_BASE_URL": "gateway"},
		"bad queue": {"QUEUE_TYPE": "stream"},
		"bad fault": {"FAULT_INJECT": "explode=tok_x"},
	}
	for name, override := range tests {
		t.Run(name, func(t *testing.T) {
			kv := map[string]string{}
			for k, v := range good {
				kv[k] = v
			}
			for k, v := range override {
				kv[k] = v
			}
			if err := configFrom(env(kv)).Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
