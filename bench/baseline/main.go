// Command baseline is the fan-out benchmark's reference xDS server: go-control-plane's snapshot
// cache and ADS server (SotW and delta), serving resources that Skiff generated, so that the
// simulated proxies of bench/fanout can be pointed at it and at Skiff in the same run.
//
// The snapshots come from JSON dump files written by bench/fanout (the resources Skiff sent each
// proxy, as serialized protobuf bytes, shared between proxies that saw identical bytes):
//
//	{"resources": [{"typeUrl": "...", "name": "...", "value": "<base64>"}, ...],
//	 "nodes": {"<node id>": {"<type url>": [<resource index>, ...]}}}
//
// Each distinct resource is unmarshaled once into its Envoy message (the same object is shared
// by every node's snapshot). Per node and type the snapshot version is a hash of the resource
// indexes, so a type whose resources did not change keeps its version (no needless push).
//
// Usage:
//
//	baseline -listen 127.0.0.1:0 -cert cert.pem -key key.pem -ca bundle.pem \
//	  -initial initial.json -after after.json
//
// It loads both dumps, sets the initial snapshots, prints "LOADED_RSS <bytes>" (its RSS with
// everything it serves loaded, before any client), "LISTENING <port>" and then reads commands on stdin:
// "change" publishes the prepared `after` snapshots (printing "CHANGED <nodes>"), "quit" exits.
// Clients must present a certificate that chains to the -ca bundle (mutual TLS).
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
)

type dumpResource struct {
	TypeURL string `json:"typeUrl"`
	Name    string `json:"name"`
	Value   string `json:"value"`
}

type dump struct {
	Resources []dumpResource              `json:"resources"`
	Nodes     map[string]map[string][]int `json:"nodes"`
}

// newMessage returns an empty Envoy message for a type URL served by the benchmark.
func newMessage(typeURL string) (proto.Message, error) {
	switch typeURL {
	case resourcev3.ClusterType:
		return &clusterv3.Cluster{}, nil
	case resourcev3.EndpointType:
		return &endpointv3.ClusterLoadAssignment{}, nil
	case resourcev3.ListenerType:
		return &listenerv3.Listener{}, nil
	case resourcev3.RouteType:
		return &routev3.RouteConfiguration{}, nil
	}
	return nil, fmt.Errorf("unsupported type URL %q", typeURL)
}

// loadDump reads a dump file and builds one snapshot per node.
func loadDump(path string) (map[string]*cachev3.Snapshot, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d dump
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	messages := make([]types.Resource, len(d.Resources))
	for i, r := range d.Resources {
		bytes, err := base64.StdEncoding.DecodeString(r.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: resource %d: %w", path, i, err)
		}
		m, err := newMessage(r.TypeURL)
		if err != nil {
			return nil, err
		}
		if err := proto.Unmarshal(bytes, m); err != nil {
			return nil, fmt.Errorf("%s: resource %d (%s): %w", path, i, r.Name, err)
		}
		messages[i] = m
	}
	out := make(map[string]*cachev3.Snapshot, len(d.Nodes))
	for node, byType := range d.Nodes {
		snap := &cachev3.Snapshot{}
		for typeURL, indexes := range byType {
			idx := cachev3.GetResponseType(typeURL)
			if idx == types.UnknownType {
				return nil, fmt.Errorf("node %s: unknown type %s", node, typeURL)
			}
			sorted := append([]int(nil), indexes...)
			sort.Ints(sorted)
			h := sha256.New()
			items := make([]types.Resource, 0, len(sorted))
			var buf [8]byte
			for _, i := range sorted {
				if i < 0 || i >= len(messages) {
					return nil, fmt.Errorf("node %s: resource index %d out of range", node, i)
				}
				binary.LittleEndian.PutUint64(buf[:], uint64(i))
				h.Write(buf[:])
				items = append(items, messages[i])
			}
			snap.Resources[idx] = cachev3.NewResources(hex.EncodeToString(h.Sum(nil))[:16], items)
		}
		out[node] = snap
	}
	return out, nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	certFile := flag.String("cert", "", "serving certificate chain (PEM)")
	keyFile := flag.String("key", "", "serving private key (PEM)")
	caFile := flag.String("ca", "", "trust bundle for client certificates (PEM)")
	initialFile := flag.String("initial", "", "dump of the initial snapshots")
	afterFile := flag.String("after", "", "dump of the snapshots after the change (optional)")
	flag.Parse()
	if *certFile == "" || *keyFile == "" || *caFile == "" || *initialFile == "" {
		log.Fatal("baseline: -cert, -key, -ca and -initial are required")
	}

	initial, err := loadDump(*initialFile)
	if err != nil {
		log.Fatalf("baseline: %v", err)
	}
	var after map[string]*cachev3.Snapshot
	if *afterFile != "" {
		if after, err = loadDump(*afterFile); err != nil {
			log.Fatalf("baseline: %v", err)
		}
	}

	ctx := context.Background()
	snapshots := cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)
	for node, snap := range initial {
		if err := snapshots.SetSnapshot(ctx, node, snap); err != nil {
			log.Fatalf("baseline: node %s: %v", node, err)
		}
	}

	// Everything it serves is loaded (both snapshot sets, the initial one set in the cache): drop
	// the dumps' parsing garbage and report the RSS. This is the "0 proxies" point of the
	// per-proxy memory figure, so that what it adds per proxy is connection and stream state.
	debug.FreeOSMemory()
	fmt.Printf("LOADED_RSS %d\n", rssBytes())

	pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("baseline: %v", err)
	}
	bundle, err := os.ReadFile(*caFile)
	if err != nil {
		log.Fatalf("baseline: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		log.Fatal("baseline: no certificate in the -ca bundle")
	}
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: roots, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	grpcServer := grpc.NewServer(
		grpc.Creds(creds),
		grpc.MaxConcurrentStreams(1<<20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30e9}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{PermitWithoutStream: true}),
	)
	xds := serverv3.NewServer(ctx, snapshots, nil)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(grpcServer, xds)

	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("baseline: %v", err)
	}
	go func() {
		if err := grpcServer.Serve(lis); err != nil {
			log.Fatalf("baseline: %v", err)
		}
	}()
	fmt.Printf("LISTENING %d\n", lis.Addr().(*net.TCPAddr).Port)

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch strings.TrimSpace(in.Text()) {
		case "change":
			if after == nil {
				fmt.Println("ERROR no -after dump")
				continue
			}
			for node, snap := range after {
				if err := snapshots.SetSnapshot(ctx, node, snap); err != nil {
					log.Printf("baseline: node %s: %v", node, err)
				}
			}
			fmt.Printf("CHANGED %d\n", len(after))
		case "quit":
			grpcServer.Stop()
			return
		}
	}
	grpcServer.Stop()
}

// rssBytes reads VmRSS from /proc/self/status (0 when unavailable).
func rssBytes() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			if len(fields) >= 2 {
				kb, _ := strconv.ParseInt(fields[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
