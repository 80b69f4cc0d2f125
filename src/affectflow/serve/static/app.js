// affectflow serve: the live page. Plain JS, no build step; charts with the vendored Chart.js.
// Exposes window.affectflow = {info, state, jobId, result, drawn()} so that tests can read what is drawn.
"use strict";
(function () {
  const COLORS = { valence: "#2f6fdb", arousal: "#d9480f" };
  const EXTRA = ["#2b8a3e", "#862e9c", "#e67700", "#0b7285"];
  const el = (id) => document.getElementById(id);
  const af = (window.affectflow = { info: null, state: "idle", jobId: null, result: null, error: null });
  let targets = ["valence", "arousal"];
  let series = null, trajectory = null;
  let csvUrl = null;
  let mic = null;
  let canStream = false;

  // The service's token (affectflow serve --token-file): from the URL fragment #token=... (then removed from the
  // address bar) or asked for when the service answers 401; kept for this tab only. Sent with every call.
  let token = null;
  try {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) { token = decodeURIComponent(m[1]); sessionStorage.setItem("affectflow-token", token); history.replaceState(null, "", location.pathname + location.search); }
    else token = sessionStorage.getItem("affectflow-token");
  } catch (e) { /* storage disabled: ask when needed */ }
  function authHeaders() { return token ? { Authorization: "Bearer " + token } : {}; }
  async function call(url, opts) {
    let r = await fetch(url, Object.assign({}, opts || {}, { headers: Object.assign({}, (opts && opts.headers) || {}, authHeaders()) }));
    if (r.status === 401) {
      const t = window.prompt("This service needs its token (the secret in the file given to affectflow serve --token-file):");
      if (t) {
        token = t.trim();
        try { sessionStorage.setItem("affectflow-token", token); } catch (e) { /* tab only */ }
        r = await fetch(url, Object.assign({}, opts || {}, { headers: Object.assign({}, (opts && opts.headers) || {}, authHeaders()) }));
      }
    }
    return r;
  }
  async function setCsvFrom(url, name) {
    if (!token) { setCsv(url, name); return; }
    const r = await call(url);
    if (r.ok) setCsv(URL.createObjectURL(await r.blob()), name);
  }

  function setState(s, text) {
    af.state = s;
    document.body.dataset.state = s;
    if (text !== undefined) el("status").textContent = text;
  }
  function setProgress(f) { el("progress").value = Math.max(0, Math.min(1, f || 0)); }
  function color(t, i) { return COLORS[t] || EXTRA[i % EXTRA.length]; }

  function makeCharts() {
    if (series) series.destroy();
    if (trajectory) trajectory.destroy();
    series = new Chart(el("series-chart"), {
      type: "line",
      data: { datasets: targets.map((t, i) => ({ label: t, data: [], borderColor: color(t, i), backgroundColor: color(t, i),
        borderWidth: 2, pointRadius: 0, spanGaps: false, tension: 0 })) },
      options: { animation: false, parsing: false, normalized: true, maintainAspectRatio: false,
        scales: { x: { type: "linear", title: { display: true, text: "time (s)" } },
                  y: { suggestedMin: -1, suggestedMax: 1, title: { display: true, text: "prediction" } } },
        plugins: { legend: { position: "top" } } },
    });
    const both = targets.includes("valence") && targets.includes("arousal");
    trajectory = new Chart(el("trajectory-chart"), {
      type: "scatter",
      data: { datasets: [
        { label: "trajectory", data: [], showLine: true, borderColor: "rgba(80,90,110,.55)", borderWidth: 1.5,
          pointRadius: 2, pointBackgroundColor: "rgba(47,111,219,.7)" },
        { label: "now", data: [], pointRadius: 6, pointBackgroundColor: "#d9480f", borderColor: "#d9480f" } ] },
      options: { animation: false, parsing: false, maintainAspectRatio: false,
        scales: { x: { suggestedMin: -1, suggestedMax: 1, title: { display: true, text: both ? "valence" : "(needs valence)" } },
                  y: { suggestedMin: -1, suggestedMax: 1, title: { display: true, text: both ? "arousal" : "(needs arousal)" } } },
        plugins: { legend: { display: false } } },
    });
  }

  // Replace everything drawn with a columnar payload {time: [...], <target>: [...]}.
  function drawPayload(p) {
    series.data.datasets.forEach((ds, i) => {
      const col = p[targets[i]] || [];
      ds.data = p.time.map((t, k) => ({ x: t, y: col[k] === null || col[k] === undefined ? NaN : col[k] }));
    });
    const traj = [];
    if (p.valence && p.arousal) {
      for (let k = 0; k < p.time.length; k++) {
        if (p.valence[k] !== null && p.arousal[k] !== null) traj.push({ x: p.valence[k], y: p.arousal[k] });
      }
    }
    trajectory.data.datasets[0].data = traj;
    trajectory.data.datasets[1].data = traj.length ? [traj[traj.length - 1]] : [];
    series.update("none");
    trajectory.update("none");
  }

  // Append one streamed prediction {time, <target>: value}.
  function drawStep(m) {
    series.data.datasets.forEach((ds, i) => {
      const v = m[targets[i]];
      ds.data.push({ x: m.time, y: v === null || v === undefined ? NaN : v });
    });
    if (m.valence !== undefined && m.arousal !== undefined && m.valence !== null && m.arousal !== null) {
      const pt = { x: m.valence, y: m.arousal };
      trajectory.data.datasets[0].data.push(pt);
      trajectory.data.datasets[1].data = [pt];
    }
    series.update("none");
    trajectory.update("none");
  }

  // What the charts hold now, as columns (NaN gaps become null).
  af.drawn = function () {
    const out = { time: series ? series.data.datasets[0].data.map((d) => d.x) : [] };
    (series ? series.data.datasets : []).forEach((ds, i) => {
      out[targets[i]] = ds.data.map((d) => (Number.isNaN(d.y) ? null : d.y));
    });
    out.trajectory = trajectory ? trajectory.data.datasets[0].data.map((d) => [d.x, d.y]) : [];
    return out;
  };

  function setCsv(url, name) {
    const a = el("csv-link");
    if (csvUrl && csvUrl.startsWith("blob:")) URL.revokeObjectURL(csvUrl);
    csvUrl = url;
    if (url) { a.href = url; a.download = name || "prediction.csv"; a.classList.remove("disabled"); a.removeAttribute("aria-disabled"); }
    else { a.removeAttribute("href"); a.classList.add("disabled"); a.setAttribute("aria-disabled", "true"); }
  }

  function fail(msg) {
    af.error = msg;
    if (mic) { stopAudio(); const ws = mic.ws; mic = null; try { ws.close(); } catch (e) { /* closed */ } }
    setState("error", "Error: " + msg);
    el("predict-btn").disabled = false;
    el("mic-btn").disabled = !canStream;
    el("live-btn").disabled = !canStream;
  }

  async function errorText(resp) {
    try { const j = await resp.json(); return j.detail || JSON.stringify(j); } catch (e) { return resp.status + " " + resp.statusText; }
  }

  // ------------------------------------------------------------------------------------------ file upload
  function upload(file) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const fd = new FormData();
      fd.append("file", file, file.name);
      xhr.open("POST", "/jobs");
      if (token) xhr.setRequestHeader("Authorization", "Bearer " + token);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) { setProgress(e.loaded / e.total); } };
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status === 202 && body) resolve(body);
        else reject(new Error((body && body.detail) || xhr.status + " " + xhr.statusText));
      };
      xhr.onerror = () => reject(new Error("the upload failed (network error)"));
      xhr.send(fd);
    });
  }

  async function predictFile(file) {
    af.result = null; af.error = null; af.jobId = null;
    makeCharts(); setCsv(null);
    el("predict-btn").disabled = true;
    setState("uploading", "Uploading " + file.name + "…");
    let job;
    try { job = await upload(file); } catch (e) { fail(e.message); return; }
    af.jobId = job.id;
    setState("running", "Predicting " + file.name + "…");
    setProgress(0);
    let seen = -1;
    for (;;) {
      const r = await call("/jobs/" + job.id + "?partial=1");
      if (!r.ok) { fail(await errorText(r)); return; }
      const j = await r.json();
      setProgress(j.progress);
      if (j.partial && j.partial.n_steps !== seen) { seen = j.partial.n_steps; drawPayload(j.partial); }
      if (j.status === "done") {
        af.result = j.result;
        drawPayload(j.result);
        setCsvFrom("/jobs/" + job.id + "/result?format=csv", (file.name.replace(/\.[^.]*$/, "") || "prediction") + "-prediction.csv");
        setProgress(1);
        setState("done", "Done: " + j.result.n_steps + " steps over " + j.result.duration_s.toFixed(1) + " s of " + file.name + ".");
        el("predict-btn").disabled = false;
        return;
      }
      if (j.status === "failed" || j.status === "cancelled") { fail(j.error || j.status); return; }
      await new Promise((res) => setTimeout(res, 250));
    }
  }

  // ------------------------------------------------------------------------------- live: microphone or file
  // Audio from the microphone (getUserMedia) or a file played in the page (decodeAudioData) goes through a
  // ScriptProcessor as float32 chunks to the /stream WebSocket; each prediction is drawn as it arrives.
  async function startLive(kind, file) {
    af.result = null; af.error = null;
    makeCharts(); setCsv(null);
    // a file is decoded at 16 kHz (the rate the features are computed at: a 16 kHz file is sent sample for
    // sample as it would be read offline); the microphone is sent at the device's rate (resampled by the server)
    const ctx = kind === "microphone" ? new AudioContext() : new AudioContext({ sampleRate: 16000 });
    let stream = null, source, samples = null;
    try {
      if (kind === "microphone") {
        stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false,
          noiseSuppression: false, autoGainControl: false } });
        source = ctx.createMediaStreamSource(stream);
      } else {
        const buf = await ctx.decodeAudioData(await file.arrayBuffer());
        samples = new Float32Array(buf.length);
        for (let c = 0; c < buf.numberOfChannels; c++) {
          const x = buf.getChannelData(c);
          for (let i = 0; i < x.length; i++) samples[i] += x[i] / buf.numberOfChannels;
        }
        source = ctx.createBufferSource();
        source.buffer = buf;
      }
    } catch (e) {
      ctx.close();
      fail(kind === "microphone" ? "the microphone is not available: " + e.message : "the browser cannot decode " + file.name + ": " + e.message);
      return;
    }
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/stream" + (token ? "?token=" + encodeURIComponent(token) : ""));
    const rows = [];
    const label = kind === "microphone" ? "Listening" : "Playing " + file.name;
    mic = { kind, stream, ctx, source, proc: null, timer: null, ws, rows, ready: false,
            name: kind === "microphone" ? "microphone" : file.name };
    ws.onopen = () => ws.send(JSON.stringify({ type: "start", input: "audio", sample_rate: ctx.sampleRate, encoding: "f32le" }));
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "ready") {
        mic.ready = true;
        setState("streaming", label + "… (" + ctx.sampleRate + " Hz)");
        if (kind === "file") playAndSend(samples);
      } else if (m.type === "prediction") { rows.push(m); drawStep(m); setState("streaming", label + "… " + m.time.toFixed(1) + " s"); }
      else if (m.type === "error") { fail(m.detail); }
      else if (m.type === "end") { finishLive(); }
    };
    ws.onclose = () => { if (mic && mic.ws === ws) { stopAudio(); if (af.state !== "error" && af.state !== "done") fail("the stream was closed"); mic = null; } };
    if (kind === "microphone") {
      const proc = ctx.createScriptProcessor(4096, 1, 1);
      proc.onaudioprocess = (e) => {
        if (mic && mic.ready && ws.readyState === WebSocket.OPEN) ws.send(new Float32Array(e.inputBuffer.getChannelData(0)).buffer);
      };
      source.connect(proc);
      proc.connect(ctx.destination);
      mic.proc = proc;
    } else {
      source.connect(ctx.destination);
    }
    const btn = kind === "microphone" ? el("mic-btn") : el("live-btn");
    btn.textContent = "Stop"; btn.classList.add("recording");
    el("predict-btn").disabled = true;
    (kind === "microphone" ? el("live-btn") : el("mic-btn")).disabled = true;
    setState("streaming", "Connecting…");
  }

  // Play the decoded file and send its samples as playback reaches them (every 50 ms), then "end".
  function playAndSend(samples) {
    const m = mic, sr = m.ctx.sampleRate;
    let sent = 0;
    const t0 = m.ctx.currentTime;
    m.source.start();
    m.timer = setInterval(() => {
      if (mic !== m || m.ws.readyState !== WebSocket.OPEN) { clearInterval(m.timer); return; }
      const upto = Math.min(samples.length, Math.floor((m.ctx.currentTime - t0) * sr));
      if (upto > sent) { m.ws.send(samples.slice(sent, upto).buffer); sent = upto; setProgress(sent / samples.length); }
      if (sent >= samples.length) { clearInterval(m.timer); stopLive(); }
    }, 50);
  }

  function stopAudio() {
    if (!mic || mic.stopped) return;
    mic.stopped = true;
    if (mic.timer) clearInterval(mic.timer);
    try { if (mic.proc) mic.proc.disconnect(); mic.source.disconnect(); } catch (e) { /* already */ }
    if (mic.kind === "file") { try { mic.source.stop(); } catch (e) { /* not started */ } }
    if (mic.stream) mic.stream.getTracks().forEach((t) => t.stop());
    mic.ctx.close();
    el("mic-btn").textContent = "Start microphone"; el("mic-btn").classList.remove("recording");
    el("live-btn").textContent = "Play file live"; el("live-btn").classList.remove("recording");
    el("predict-btn").disabled = false;
    el("mic-btn").disabled = !canStream; el("live-btn").disabled = !canStream;
  }

  function stopLive() {
    if (!mic) return;
    stopAudio();
    if (mic.ws.readyState === WebSocket.OPEN) mic.ws.send(JSON.stringify({ type: "end" }));
    setState("stopping", "Finishing the stream…");
  }

  function finishLive() {
    const rows = mic.rows;
    const lines = ["time," + targets.join(",")];
    rows.forEach((m) => lines.push([m.time, ...targets.map((t) => (m[t] === null || m[t] === undefined ? "" : m[t]))].join(",")));
    setCsv(URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" })),
      mic.name.replace(/\.[^.]*$/, "") + "-live-prediction.csv");
    af.result = { time: rows.map((m) => m.time), targets, n_steps: rows.length };
    targets.forEach((t) => { af.result[t] = rows.map((m) => (m[t] === undefined ? null : m[t])); });
    const ws = mic.ws;
    mic = null;
    ws.close();
    setState("done", "Stream ended: " + rows.length + " steps.");
  }

  // ------------------------------------------------------------------------------------------ start-up
  async function init() {
    try {
      const r = await call("/info");
      const info = await r.json();
      af.info = info;
      targets = info.targets;
      el("run-info").textContent = "Run " + info.name + " · targets " + info.targets.join(", ") + " · features " +
        info.feature_sets.join(", ") + " · " + info.label_rate_hz + " Hz" + (info.causal ? " · causal" : "");
      canStream = !!(info.stream_inputs && info.stream_inputs.includes("audio"));
      if (!canStream) {
        ["mic-btn", "live-btn"].forEach((id) => { el(id).disabled = true; el(id).title = "live: " + (info.stream_refusal || "this run cannot stream from audio"); });
      }
      if (info.media_supported === false) { el("predict-btn").disabled = true; el("predict-btn").title = info.why_not_media || ""; }
    } catch (e) { el("run-info").textContent = "Could not load the run's metadata."; }
    makeCharts();
    el("upload-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const f = el("file").files[0];
      if (!f) { fail("choose a file first"); return; }
      predictFile(f);
    });
    el("mic-btn").addEventListener("click", () => (mic ? stopLive() : startLive("microphone")));
    el("live-btn").addEventListener("click", () => {
      if (mic) { stopLive(); return; }
      const f = el("file").files[0];
      if (!f) { fail("choose a file first"); return; }
      startLive("file", f);
    });
    setState("ready");
  }
  init();
})();
