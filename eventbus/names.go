package eventbus

import (
	"fmt"
	"regexp"
	"strings"
)

// Exchange is the one durable fanout exchange every service publishes its
// integration events to. Every queue bound to it receives every event.
const Exchange = "sagittarius-a"

var (
	serviceNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*\.[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	eventNameRE   = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
)

// ValidateServiceName reports whether name follows the guideline's
// domain-name.subdomain-name pattern: lowercase words joined by dashes,
// exactly one dot between the domain and the subdomain. The service name is
// also its queue name and its app_id.
func ValidateServiceName(name string) error {
	if name == "" {
		return fmt.Errorf("service name is empty: want domain-name.subdomain-name, e.g. sales.orders")
	}
	if strings.Count(name, ".") != 1 {
		return fmt.Errorf("service name %q: want exactly one dot, domain-name.subdomain-name, e.g. sales.orders", name)
	}
	if !serviceNameRE.MatchString(name) {
		return fmt.Errorf("service name %q: want lowercase words joined by dashes on each side of the dot (domain-name.subdomain-name), e.g. sales.email-accounts-validations", name)
	}
	for _, part := range strings.Split(name, ".") {
		for _, w := range strings.Split(part, "-") {
			if w == "queue" {
				return fmt.Errorf("service name %q: the guideline forbids a \"queue\" prefix or suffix in queue names", name)
			}
		}
	}
	return nil
}

// ValidateEventName reports whether name is a valid integration event name:
// lower_snake_case English words whose last word is in the past tense
// (order_placed, email_dispatched, payment_refunded). It refuses names such as
// OrderPlace (not lower_snake_case) and place_order (not in the past tense),
// with an error that says why.
func ValidateEventName(name string) error {
	if name == "" {
		return fmt.Errorf("event name is empty: want lower_snake_case in the past tense, e.g. order_placed")
	}
	if !eventNameRE.MatchString(name) {
		return fmt.Errorf("event name %q: want lower_snake_case (lowercase words joined by underscores), e.g. order_placed", name)
	}
	words := strings.Split(name, "_")
	last := words[len(words)-1]
	if !isPastTense(last) {
		return fmt.Errorf("event name %q: an event states what has happened, so its last word must be in the past tense (%q is not), e.g. %s", name, last, suggestPast(words))
	}
	return nil
}

// pastIrregular lists irregular past participles accepted as the last word of
// an event name. Regular verbs end in "ed" and need no entry.
var pastIrregular = map[string]bool{
	"bent": true, "bet": true, "bound": true, "bought": true, "broadcast": true, "broken": true,
	"brought": true, "built": true, "burnt": true, "cast": true, "caught": true, "chosen": true,
	"cut": true, "dealt": true, "done": true, "drawn": true, "driven": true, "dug": true,
	"dwelt": true, "fallen": true, "felt": true, "forbidden": true, "forecast": true,
	"forgiven": true, "forgotten": true, "fought": true, "found": true, "frozen": true,
	"given": true, "gone": true, "got": true, "gotten": true, "grown": true, "held": true,
	"hidden": true, "hit": true, "hung": true, "kept": true, "known": true, "laid": true,
	"led": true, "left": true, "lent": true, "let": true, "lit": true, "lost": true, "made": true,
	"meant": true, "met": true, "overridden": true, "paid": true, "prepaid": true, "put": true,
	"quit": true, "read": true, "rebuilt": true, "redone": true, "remade": true, "repaid": true,
	"reset": true, "resent": true, "rewritten": true, "risen": true, "run": true, "rerun": true,
	"seen": true, "sent": true, "set": true, "shaken": true, "shown": true, "shut": true,
	"sold": true, "sought": true, "spent": true, "split": true, "spoken": true, "spun": true,
	"stolen": true, "struck": true, "stuck": true, "swept": true, "taken": true, "taught": true,
	"thought": true, "thrown": true, "told": true, "torn": true, "understood": true, "undone": true,
	"undertaken": true, "upheld": true, "upset": true, "withdrawn": true, "withheld": true,
	"won": true, "worn": true, "wound": true, "written": true,
}

// edNotPast lists words ending in "ed" that are not past participles.
var edNotPast = map[string]bool{
	"bed": true, "bleed": true, "breed": true, "embed": true, "feed": true, "greed": true,
	"need": true, "red": true, "reed": true, "seed": true, "shed": true, "sled": true,
	"speed": true, "steed": true, "weed": true,
}

func isPastTense(word string) bool {
	if pastIrregular[word] {
		return true
	}
	if edNotPast[word] {
		return false
	}
	return len(word) > 3 && strings.HasSuffix(word, "ed")
}

// suggestPast proposes a past-tense rewording of a refused event name, for the
// error message only: "place_order" becomes "order_placed".
func suggestPast(words []string) string {
	verb := words[0]
	rest := words[1:]
	if len(rest) == 0 {
		return verb + "_happened"
	}
	past := verb + "ed"
	switch {
	case strings.HasSuffix(verb, "e"):
		past = verb + "d"
	case strings.HasSuffix(verb, "y") && len(verb) > 1 && !strings.ContainsRune("aeiou", rune(verb[len(verb)-2])):
		past = verb[:len(verb)-1] + "ied"
	}
	return strings.Join(append(append([]string{}, rest...), past), "_")
}
