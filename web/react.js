// react.js — useSessionExpiry(), the session's expiry state for React.
//
//   import { useSessionExpiry } from "@sessionguard/session-expiry/react";
//   const { warning, reason, expiresIn, staySignedIn, signInNow } = useSessionExpiry({ baseURL });
//
// The tracker is created and started in an effect, so rendering on a
// server (renderToString) starts nothing.

import { useEffect, useMemo, useState } from "react";
import { createSessionExpiry } from "./session-expiry.js";

const initial = { state: "none", reason: null, expiresIn: null, idleExpiresIn: null, absoluteExpiresIn: null, error: null };

/**
 * Returns {warning, reason, expiresIn, idleExpiresIn, absoluteExpiresIn,
 * maxAge, error, dismissed, staySignedIn, signInNow, dismiss, tracker}. Pass the
 * options of createSessionExpiry, or {tracker} to share one.
 */
export function useSessionExpiry(options = {}) {
	const [s, setS] = useState(initial);
	const [tracker, setTracker] = useState(null);
	const { tracker: given, baseURL, endpoint } = options;
	useEffect(() => {
		const t = given || createSessionExpiry({ ...options, autoStart: false });
		setTracker(t);
		const off = t.subscribe(setS);
		t.start();
		return () => {
			off();
			if (!given) t.close();
		};
		// the options object is new on every render; these identify the tracker
		// eslint-disable-next-line react-hooks/exhaustive-deps
	}, [given, baseURL, endpoint]);
	return useMemo(
		() => ({
			warning: s.state,
			reason: s.reason,
			expiresIn: s.expiresIn,
			idleExpiresIn: s.idleExpiresIn,
			absoluteExpiresIn: s.absoluteExpiresIn,
			maxAge: s.maxAge ?? null,
			error: s.error,
			dismissed: !!s.dismissed,
			staySignedIn: () => (tracker ? tracker.keepalive() : Promise.resolve(null)),
			signInNow: () => tracker && tracker.signInNow(),
			dismiss: () => tracker && tracker.dismiss(),
			tracker,
		}),
		[s, tracker],
	);
}

export default useSessionExpiry;
