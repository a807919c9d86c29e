// Command request asks the mesh for devices, prints the grant and releases it:
//
//	source .run/env   # after `make run`
//	go run ./examples/request -project snu-llm -sku H100-SXM-80GB -count 2 -lease 30m
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"slicebroker.io/go/slicebroker"
)

func main() {
	project := flag.String("project", "snu-llm", "project the devices are for")
	sku := flag.String("sku", "H100-SXM-80GB", "accelerator model")
	count := flag.Int("count", 1, "whole devices")
	lease := flag.Duration("lease", 30*time.Minute, "lease length")
	keep := flag.Bool("keep", false, "keep the grant instead of releasing it")
	flag.Parse()

	client, err := slicebroker.Dial(slicebroker.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	capacity, err := client.GetCapacity(ctx)
	if err == nil {
		for _, c := range capacity {
			fmt.Printf("%-16s %4d free of %4d\n", c.GetSku(), c.GetFree(), c.GetDevices())
		}
	}

	quote, err := client.Quote(ctx, *project, *sku, int32(*count), *lease)
	if err != nil {
		log.Fatal(err)
	}
	if quote.GetRefusalReason() != "" {
		log.Fatalf("would be refused (%s): %s", quote.GetRefusalReason(), quote.GetRefusalMessage())
	}
	fmt.Printf("quote: %.0f %s for the lease; starts %s\n", quote.GetCost(), quote.GetCurrency(),
		quote.GetEstimatedStart().AsTime().Format(time.RFC3339))

	grant, err := client.RequestGrant(ctx, *project, *sku, int32(*count), *lease, "")
	if err != nil {
		reason, details := slicebroker.Reason(err)
		log.Fatalf("refused (%s %v): %v", reason, details, err)
	}
	fmt.Printf("grant %s: %d x %s until %s\n", grant.GetId(), grant.GetCount(), grant.GetSku(),
		grant.GetExpiresAt().AsTime().Format(time.RFC3339))
	for _, s := range grant.GetSlices() {
		fmt.Printf("  %s\n", s.GetDeviceId())
	}
	if *keep {
		return
	}
	ended, err := client.ReleaseGrant(ctx, grant.GetId())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("released: %s\n", ended.GetState())
}
