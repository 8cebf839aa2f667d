// A tiny fast HTTP/1.1 backend for the data-plane benchmark (bench/dataplane/run.ts): answers
// every request with 200 and a 3-byte body, so the proxies, not the app, dominate the cost.
// Go standard library only. Usage: backend -listen 0.0.0.0:9080
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9080", "address to listen on")
	flag.Parse()
	body := []byte("ok\n")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	log.Printf("listening on %s", *listen)
	log.Fatal(http.ListenAndServe(*listen, handler))
}
