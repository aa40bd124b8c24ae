package store

// Actor names who made a change, as the audit trail records it: a
// person's account ("admin"), an operating-system user at the command
// line ("cli:root"), an appliance of the district or the appliance itself
// ("system"). It is a name, never proof of anything: whoever calls the
// store has already established it.
type Actor string

// ActorSystem is the actor of changes passgate makes by itself (repairs
// at start), not on anyone's request.
const ActorSystem Actor = "system"

// String is the actor as the trail writes it.
func (a Actor) String() string { return string(a) }
