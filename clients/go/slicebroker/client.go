// Package slicebroker is a thin Go client of the slicebroker mesh: it dials the broker and the
// inventory with mutual TLS and a bearer token and wraps the calls an institution makes most:
// RequestGrant, Quote, Watch, ReleaseGrant, ListGrants and GetCapacity. Everything else is reachable through the
// generated stubs (Client.Broker, Client.Inventory, package slicebroker.io/go/gen/slicebroker/v1).
//
// Errors are the gRPC status errors the services send; Reason reads the stable reason
// (google.rpc.ErrorInfo.reason, e.g. "QUOTA_EXCEEDED") out of one.
package slicebroker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "slicebroker.io/go/gen/slicebroker/v1"
)

// Options says where the services are and how to authenticate; FromEnv fills it the way slicectl
// and the Python SDK read their environment.
type Options struct {
	BrokerAddr    string        // host:port of the broker (SLICEBROKER_BROKER_ADDR)
	InventoryAddr string        // host:port of the inventory (SLICEBROKER_INVENTORY_ADDR); optional
	Token         string        // bearer token (SLICEBROKER_TOKEN); empty sends none
	CAFile        string        // PEM CA of the services (SLICEBROKER_TLS_CA_FILE); empty dials plaintext
	CertFile      string        // PEM client certificate for mutual TLS (SLICEBROKER_TLS_CERT_FILE)
	KeyFile       string        // PEM key of CertFile (SLICEBROKER_TLS_KEY_FILE)
	Timeout       time.Duration // deadline of each call; 0 means 10s
}

// FromEnv reads the SLICEBROKER_* variables `make run` writes to .run/env.
func FromEnv() Options {
	return Options{
		BrokerAddr:    os.Getenv("SLICEBROKER_BROKER_ADDR"),
		InventoryAddr: os.Getenv("SLICEBROKER_INVENTORY_ADDR"),
		Token:         os.Getenv("SLICEBROKER_TOKEN"),
		CAFile:        os.Getenv("SLICEBROKER_TLS_CA_FILE"),
		CertFile:      os.Getenv("SLICEBROKER_TLS_CERT_FILE"),
		KeyFile:       os.Getenv("SLICEBROKER_TLS_KEY_FILE"),
	}
}

// Client holds one connection per service. Close it when done.
type Client struct {
	Broker    pb.BrokerServiceClient
	Inventory pb.InventoryServiceClient // nil without Options.InventoryAddr
	opts      Options
	conns     []*grpc.ClientConn
}

// Dial opens the connections (lazily: the first call connects).
func Dial(opts Options) (*Client, error) {
	if opts.BrokerAddr == "" {
		return nil, errors.New("slicebroker: no broker address (set SLICEBROKER_BROKER_ADDR; `source .run/env` after `make run`)")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	creds, err := transportCredentials(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{opts: opts}
	dial := func(addr string) (*grpc.ClientConn, error) {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return nil, fmt.Errorf("slicebroker: dial %s: %w", addr, err)
		}
		c.conns = append(c.conns, conn)
		return conn, nil
	}
	broker, err := dial(opts.BrokerAddr)
	if err != nil {
		return nil, err
	}
	c.Broker = pb.NewBrokerServiceClient(broker)
	if opts.InventoryAddr != "" {
		inventory, err := dial(opts.InventoryAddr)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Inventory = pb.NewInventoryServiceClient(inventory)
	}
	return c, nil
}

func transportCredentials(opts Options) (credentials.TransportCredentials, error) {
	if opts.CAFile == "" {
		return insecure.NewCredentials(), nil
	}
	pem, err := os.ReadFile(opts.CAFile)
	if err != nil {
		return nil, fmt.Errorf("slicebroker: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("slicebroker: no certificate in %s", opts.CAFile)
	}
	config := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if opts.CertFile != "" || opts.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("slicebroker: client certificate: %w", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

// Close closes every connection.
func (c *Client) Close() error {
	var errs []error
	for _, conn := range c.conns {
		errs = append(errs, conn.Close())
	}
	return errors.Join(errs...)
}

func (c *Client) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.opts.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.opts.Token)
	}
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.Timeout)
}

// RequestGrant asks for count whole devices of sku for project, for lease. An empty
// idempotencyKey gets a fresh one; every retry of this call sends the same key, so a retry after
// UNAVAILABLE returns the first grant instead of making a second.
func (c *Client) RequestGrant(ctx context.Context, project, sku string, count int32, lease time.Duration, idempotencyKey string) (*pb.Grant, error) {
	if idempotencyKey == "" {
		idempotencyKey = newKey()
	}
	req := &pb.RequestGrantRequest{
		Project: project, Sku: sku, Count: count,
		Lease: durationpb.New(lease), IdempotencyKey: idempotencyKey,
	}
	var grant *pb.Grant
	err := retry(ctx, func() error {
		callCtx, cancel := c.call(ctx)
		defer cancel()
		var err error
		grant, err = c.Broker.RequestGrant(callCtx, req)
		return err
	})
	return grant, err
}

// Quote asks what count devices of sku for project, for lease, would cost and when they would
// likely start, without submitting anything. A refusal by quota or budget is not an error: it is in
// the answer's RefusalReason and RefusalMessage.
func (c *Client) Quote(ctx context.Context, project, sku string, count int32, lease time.Duration) (*pb.QuoteResponse, error) {
	req := &pb.RequestGrantRequest{Project: project, Sku: sku, Count: count, Lease: durationpb.New(lease)}
	var quote *pb.QuoteResponse
	err := retry(ctx, func() error {
		callCtx, cancel := c.call(ctx)
		defer cancel()
		var err error
		quote, err = c.Broker.Quote(callCtx, req)
		return err
	})
	return quote, err
}

// WatchFilter picks the grants a watch follows: one project's, one grant, or (both empty) all the
// caller may see. FromRevision resumes after a change already applied; empty starts with a snapshot.
type WatchFilter struct {
	Project      string
	GrantID      string
	FromRevision string
}

// Watch calls fn with every change to the grants the filter picks, in order, until ctx ends or fn
// returns an error (which Watch returns). When the stream breaks (a broker restart, UNAVAILABLE)
// it reconnects from the last revision fn saw, so no change is missed or repeated; a change of type
// SNAPSHOT_BEGIN means "forget what you hold: the grants as they are now follow, up to SNAPSHOT_END".
func (c *Client) Watch(ctx context.Context, filter WatchFilter, fn func(*pb.GrantChange) error) error {
	revision := filter.FromRevision
	backoff := 100 * time.Millisecond
	for {
		err := c.watchOnce(ctx, filter.Project, filter.GrantID, &revision, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var stop stopError
		if errors.As(err, &stop) {
			return stop.err
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.Canceled, codes.Aborted, codes.Internal, codes.OK:
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// stopError carries the error of the caller's fn out of a watch, so it is not taken for a broken stream.
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }

func (c *Client) watchOnce(ctx context.Context, project, grantID string, revision *string, fn func(*pb.GrantChange) error) error {
	if c.opts.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.opts.Token)
	}
	// No deadline: a watch lives as long as the caller wants it.
	stream, err := c.Broker.WatchGrants(ctx, &pb.WatchGrantsRequest{Project: project, GrantId: grantID, FromRevision: *revision})
	if err != nil {
		return err
	}
	for {
		change, err := stream.Recv()
		if err != nil {
			return err
		}
		if err := fn(change); err != nil {
			return stopError{err}
		}
		if change.GetRevision() != "" {
			*revision = change.GetRevision()
		}
	}
}

// ReleaseGrant ends a grant; releasing an ended grant returns it unchanged (so retries are safe).
func (c *Client) ReleaseGrant(ctx context.Context, id string) (*pb.Grant, error) {
	var grant *pb.Grant
	err := retry(ctx, func() error {
		callCtx, cancel := c.call(ctx)
		defer cancel()
		var err error
		grant, err = c.Broker.ReleaseGrant(callCtx, &pb.ReleaseGrantRequest{Id: id})
		return err
	})
	return grant, err
}

// ListGrants returns every grant of project (all projects when empty), newest first, reading
// page after page.
func (c *Client) ListGrants(ctx context.Context, project string) ([]*pb.Grant, error) {
	var all []*pb.Grant
	token := ""
	for {
		callCtx, cancel := c.call(ctx)
		page, err := c.Broker.ListGrants(callCtx, &pb.ListGrantsRequest{Project: project, PageToken: token})
		cancel()
		if err != nil {
			return nil, err
		}
		all = append(all, page.GetGrants()...)
		token = page.GetNextPageToken()
		if token == "" {
			return all, nil
		}
	}
}

// GetCapacity returns free and total devices per SKU (needs Options.InventoryAddr).
func (c *Client) GetCapacity(ctx context.Context) ([]*pb.SkuCapacity, error) {
	if c.Inventory == nil {
		return nil, errors.New("slicebroker: no inventory address (set SLICEBROKER_INVENTORY_ADDR)")
	}
	callCtx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.Inventory.GetCapacity(callCtx, &pb.GetCapacityRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetSkus(), nil
}

// Reason is the stable reason of a service error ("QUOTA_EXCEEDED", "UNKNOWN_SKU", ...), and its
// ErrorInfo metadata (e.g. "limit", "short_by"); the status code's name when there is none.
func Reason(err error) (string, map[string]string) {
	st, ok := status.FromError(err)
	if !ok {
		return "", nil
	}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			return info.GetReason(), info.GetMetadata()
		}
	}
	return st.Code().String(), nil
}

// retry runs call up to 4 times while it fails with UNAVAILABLE or ABORTED, backing off; both
// mean the request changed nothing or will be replayed idempotently.
func retry(ctx context.Context, call func() error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := call()
		code := status.Code(err)
		if err == nil || attempt == 4 || (code != codes.Unavailable && code != codes.Aborted) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
