package citylink_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"passgate/store"
)

// What a hub makes of each message, without a cluster: stored once
// however often it comes, its own district's held while held here and
// taken back once lost, positions never going back, and refusals
// audited.
func TestApplyCityMessages(t *testing.T) {
	db, _, own := newStore(t)
	defer db.Close()
	ctx := context.Background()
	pid := bytes.Repeat([]byte{7}, 12)
	rec := func(d string, seq int64) *store.CityRevocation {
		return &store.CityRevocation{District: d, Seq: seq, Kind: store.RevokePass, Target: pid, At: time.Now()}
	}
	mine := revokePass(t, db)
	list, _ := db.RevocationsSince(ctx, 0)
	mineSeq := list[len(list)-1].Seq

	for i, c := range []struct {
		msg  store.CityMessage
		want store.CityOutcome
	}{
		{store.CityMessage{StreamSeq: 1, SubjectDistrict: "Dother1", Revocation: rec("Dother1", 5)}, store.CityStored},
		{store.CityMessage{StreamSeq: 1, SubjectDistrict: "Dother1", Revocation: rec("Dother1", 5)}, store.CityHeld},    // redelivered
		{store.CityMessage{StreamSeq: 2, SubjectDistrict: "Dother1", Revocation: rec("Dother1", 5)}, store.CityHeld},    // published twice
		{store.CityMessage{StreamSeq: 3, SubjectDistrict: "Dother2", Revocation: rec("Dother1", 6)}, store.CityRefused}, // another's record
		{store.CityMessage{StreamSeq: 4, SubjectDistrict: "Dother2", Refused: "parse: bad"}, store.CityRefused},
		{store.CityMessage{StreamSeq: 5, SubjectDistrict: own, Revocation: &store.CityRevocation{District: own, Seq: mineSeq, Kind: store.RevokePass, Target: mine, At: time.Now()}}, store.CityHeld},
		{store.CityMessage{StreamSeq: 6, SubjectDistrict: own, Revocation: rec(own, 1)}, store.CityStored}, // own, lost here
		{store.CityMessage{StreamSeq: 7, SubjectDistrict: "Dother1", Revocation: &store.CityRevocation{District: "Dother1", Seq: 9, Kind: store.RevokePass, Target: pid, Reason: "a\x1b[2Jb", At: time.Now()}}, store.CityRefused},
		{store.CityMessage{StreamSeq: 8, SubjectDistrict: "Dother1", Revocation: &store.CityRevocation{District: "Dother1", Seq: 10, Kind: store.RevokeSubject, Target: make([]byte, 16), At: time.Now()}}, store.CityRefused}, // no cut-off
	} {
		outs, err := db.ApplyCityMessages(ctx, []store.CityMessage{c.msg})
		if err != nil || outs[0] != c.want {
			t.Fatalf("case %d: %v %v, want %v", i, outs, err, c.want)
		}
	}
	st, err := db.CityLinkState(ctx)
	if err != nil || !st.Linked || st.ConsumedSeq != 8 || st.Taken != 2 || st.Pending != 1 || st.OldestPending.IsZero() {
		t.Fatalf("%+v %v", st, err)
	}
	if n := len(refusals(t, db)); n != 4 {
		t.Fatalf("%d refusals audited, want 4", n)
	}
	// What came from the city is never published again.
	_, pending, err := db.CityPending(ctx, 100)
	if err != nil || len(pending) != 1 || !bytes.Equal(pending[0].Target, mine) {
		t.Fatalf("pending %v %v", pending, err)
	}
	if outs, err := db.ApplyCityMessages(ctx, []store.CityMessage{{StreamSeq: 2, SubjectDistrict: "Dother3", Revocation: rec("Dother3", 1)}}); err != nil || outs[0] != store.CityHeld {
		t.Fatalf("a message before the position: %v %v", outs, err)
	}
}
