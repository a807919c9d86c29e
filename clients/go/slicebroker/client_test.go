package slicebroker_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	pb "slicebroker.io/go/gen/slicebroker/v1"
	"slicebroker.io/go/slicebroker"
)

// dial connects to the mesh named by SLICEBROKER_* (what `make run` writes to .run/env, and what
// tests/api/sdk/test_go_client.py sets); without it the test is skipped.
func dial(t *testing.T) *slicebroker.Client {
	t.Helper()
	if os.Getenv("SLICEBROKER_BROKER_ADDR") == "" {
		t.Skip("SLICEBROKER_BROKER_ADDR is not set: no mesh to test against (make run; source .run/env)")
	}
	client, err := slicebroker.Dial(slicebroker.FromEnv())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func project() string {
	if p := os.Getenv("SLICEBROKER_TEST_PROJECT"); p != "" {
		return p
	}
	return "kaist-npu-compiler"
}

func TestRequestListRelease(t *testing.T) {
	client := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	before, err := client.GetCapacity(ctx)
	if err != nil {
		t.Fatalf("GetCapacity: %v", err)
	}
	free := map[string]int32{}
	for _, c := range before {
		free[c.GetSku()] = c.GetFree()
	}

	key := "go-test-" + time.Now().Format("150405.000000000")
	grant, err := client.RequestGrant(ctx, project(), "RNGD", 2, 10*time.Minute, key)
	if err != nil {
		t.Fatalf("RequestGrant: %v", err)
	}
	if grant.GetState() != pb.GrantState_GRANT_STATE_ACTIVE || len(grant.GetSlices()) != 2 {
		t.Fatalf("grant %v: want active with 2 slices", grant)
	}
	again, err := client.RequestGrant(ctx, project(), "RNGD", 2, 10*time.Minute, key)
	if err != nil || again.GetId() != grant.GetId() {
		t.Fatalf("replayed key gave %v, %v; want the first grant %s", again.GetId(), err, grant.GetId())
	}

	after, err := client.GetCapacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range after {
		if c.GetSku() == "RNGD" && c.GetFree() != free["RNGD"]-2 {
			t.Fatalf("RNGD free %d after the grant, want %d", c.GetFree(), free["RNGD"]-2)
		}
	}

	listed, err := client.ListGrants(ctx, project())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range listed {
		found = found || g.GetId() == grant.GetId()
	}
	if !found {
		t.Fatalf("grant %s not in ListGrants(%s)", grant.GetId(), project())
	}

	ended, err := client.ReleaseGrant(ctx, grant.GetId())
	if err != nil || ended.GetState() != pb.GrantState_GRANT_STATE_ENDED {
		t.Fatalf("ReleaseGrant: %v, %v", ended.GetState(), err)
	}
}

func TestQuoteThenWatchAGrantFromRequestToRelease(t *testing.T) {
	client := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	quote, err := client.Quote(ctx, project(), "RNGD", 1, time.Hour)
	if err != nil {
		t.Fatalf("Quote: %v", err)
	}
	if quote.GetSku() != "RNGD" || quote.GetCount() != 1 || quote.GetRefusalReason() != "" {
		t.Fatalf("quote %v: want RNGD x 1 and no refusal", quote)
	}
	if !quote.GetAvailableNow() {
		t.Fatalf("quote %v: want available now on the demo facility", quote)
	}

	grant, err := client.RequestGrant(ctx, project(), "RNGD", 1, 10*time.Minute, "")
	if err != nil {
		t.Fatalf("RequestGrant: %v", err)
	}
	if _, err := client.ReleaseGrant(ctx, grant.GetId()); err != nil {
		t.Fatalf("ReleaseGrant: %v", err)
	}

	// The grant is over: a watch of it from the start shows the snapshot (nothing live), and
	// resuming from before the grant replays its changes in order.
	var seen []pb.GrantChangeType
	done := errors.New("released seen")
	err = client.Watch(ctx, slicebroker.WatchFilter{GrantID: grant.GetId(), FromRevision: "0-0"}, func(change *pb.GrantChange) error {
		seen = append(seen, change.GetType())
		if change.GetType() == pb.GrantChangeType_GRANT_CHANGE_TYPE_RELEASED {
			return done
		}
		return nil
	})
	if !errors.Is(err, done) {
		t.Fatalf("Watch ended with %v after %v", err, seen)
	}
	if len(seen) < 2 || seen[len(seen)-2] != pb.GrantChangeType_GRANT_CHANGE_TYPE_GRANTED {
		t.Fatalf("changes %v: want ... GRANTED, RELEASED", seen)
	}
}

func TestRefusalCarriesTheReason(t *testing.T) {
	client := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.RequestGrant(ctx, project(), "H900", 1, time.Minute, "")
	if reason, _ := slicebroker.Reason(err); reason != "UNKNOWN_SKU" {
		t.Fatalf("unknown SKU gave %q (%v), want UNKNOWN_SKU", reason, err)
	}
}
