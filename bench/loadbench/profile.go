package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// profile fetches a CPU profile of d (whole seconds, at least one) from
// the Caddy admin endpoint admin and writes it to path. The returned
// channel yields the outcome once the profile is written.
func profile(admin string, d time.Duration, path string) <-chan error {
	done := make(chan error, 1)
	secs := max(int(d/time.Second), 1)
	go func() {
		done <- fetchProfile(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", admin, secs), path, time.Duration(secs+10)*time.Second)
	}()
	return done
}

func fetchProfile(url, path string, timeout time.Duration) error {
	resp, err := (&http.Client{Timeout: timeout}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
