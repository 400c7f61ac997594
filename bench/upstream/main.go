// Command upstream is the app behind every gateway of the load benchmark:
// it answers every request with 200 and a short body, as cheaply as Go's
// net/http allows, so that the benchmark measures the gateways.
//
//	upstream -listen 127.0.0.1:9001
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "address to listen on")
	flag.Parse()
	body := []byte("ok\n")
	log.Fatal(http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})))
}
