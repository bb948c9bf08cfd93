package service

import (
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/failedmsg"
)

// openFailed creates the failed-messages keeper and API of a service with a
// queue (internal/failedmsg): its tables are created by migrate, its routes
// added to the service's contract by contract, its keeper run as the actor
// "failed-messages" of the group.
//
// SEAM(auth): when the kit verifies tokens, the routes of p.failed must
// require the role "operator" (see failedmsg.Identify).
func (p *Process) openFailed() {
	p.keeper = failedmsg.NewKeeper(p.DB, p.Bus, p.Logger)
	p.failed = failedmsg.NewAPI(p.keeper, p.Base.Join(p.spec.Dir, "v1"), p.Logger, p.Config.FailedMessagesAllowEdit)
	// The keeper drains the dead-letter queue: the gauge counts what it kept.
	p.Telemetry.CountDeadLetters(p.keeper.Store().UnresolvedCount)
}

// withFailed adds the failed-messages routes to svc's, for a service with a
// queue whose API does not serve them itself.
func (p *Process) withFailed(svc contracts.Service) contracts.Service {
	if p.failed == nil {
		return svc
	}
	svc.Routes = append(append([]contracts.Route(nil), svc.Routes...), p.failed.Routes()...)
	return svc
}
