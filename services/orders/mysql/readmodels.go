package mysql

import "github.com/sagittarius-a/sagittarius/eventbus"

// subscribeReadModels registers the handlers feeding the customers and
// products read models.
func (s *Store) subscribeReadModels(b *eventbus.Bus) error {
	return nil
}
