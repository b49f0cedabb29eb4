// zbmc web console: plain modern JavaScript, no build step. Every tenant call goes through the
// BMC API (/api/v2/bmc) signed exactly as the SDKs sign (ZC2-HMAC-SHA256 with WebCrypto) or with
// a bearer token; balance, ledger and orders through /account/v1 with the same authentication;
// the operator's page through /admin/v1 with the admin token. docs/console.md describes it.

const VERSION = "2026-02-01";
const STORE = "zbmc-console";
const PAGE_SIZE = 10;
const enc = new TextEncoder();

let session = JSON.parse(sessionStorage.getItem(STORE) || "null");

// --- signing and calls ------------------------------------------------------------------------

const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");

async function sha256Hex(text) {
  return hex(await crypto.subtle.digest("SHA-256", enc.encode(text)));
}

async function hmacHex(secret, text) {
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", key, enc.encode(text)));
}

// spec README §3.1: the canonical request signs Content-Type and Host as sent, and the raw body
async function signature(secret, contentType, host, timestamp, body) {
  const canonical = ["POST", "/", "", `content-type:${contentType}\nhost:${host}\n`, "content-type;host", await sha256Hex(body)].join("\n");
  return hmacHex(secret, `ZC2-HMAC-SHA256\n${timestamp}\n${await sha256Hex(canonical)}`);
}

class ApiError extends Error {
  constructor(code, message, requestId) {
    super(`${code}: ${message}`);
    this.code = code;
    this.requestId = requestId;
  }
}

async function signedCall(path, action, payload = {}) {
  const body = JSON.stringify(payload);
  const contentType = "application/json";
  const headers = { "Content-Type": contentType, "X-ZC-Action": action, "X-ZC-Version": VERSION };
  if (session.mode === "token") {
    headers.Authorization = `Bearer ${session.secret}`;
  } else {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const sig = await signature(session.secret, contentType, location.host, timestamp, body);
    headers["X-ZC-Timestamp"] = timestamp;
    headers["X-ZC-Signature-Method"] = "ZC2-HMAC-SHA256";
    headers.Authorization = `ZC2-HMAC-SHA256 Credential=${session.id}, SignedHeaders=content-type;host, Signature=${sig}`;
  }
  const response = await fetch(path, { method: "POST", headers, body });
  const data = await response.json();
  if (data.code) throw new ApiError(data.code, data.message, data.requestId);
  return data.response;
}

const api = (action, payload) => signedCall("/api/v2/bmc", action, payload);
const account = (action, payload) => signedCall("/account/v1", action, payload);

async function admin(method, path, body) {
  const response = await fetch(`/admin/v1/${path}`, {
    method,
    headers: { Authorization: `Bearer ${session.secret}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (data.code) throw new ApiError(data.code, data.message, data.requestId);
  return data;
}

// --- DOM helpers ------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const show = (value) => (value === null || value === undefined || value === "" ? "—" : String(value));
const money = (value) => (value === null || value === undefined ? "—" : Number(value).toFixed(2));

function table(columns, rows, testid) {
  return h("table", { "data-testid": testid },
    h("thead", {}, h("tr", {}, columns.map(([title, , cls]) => h("th", { class: cls }, title)))),
    h("tbody", {}, rows.length
      ? rows.map((row) => h("tr", {}, columns.map(([, cell, cls]) => h("td", { class: cls }, cell(row)))))
      : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "(none)"))));
}

function toast(text, error = false) {
  const item = h("div", { class: error ? "error" : "", "data-testid": error ? "error" : "notice" }, text);
  document.getElementById("toast").append(item);
  setTimeout(() => item.remove(), error ? 12000 : 6000);
}

function fail(error) {
  toast(error instanceof ApiError ? `${error.message} (request ${error.requestId})` : String(error), true);
}

const main = () => document.getElementById("main");

function render(...nodes) {
  main().replaceChildren(...nodes);
}

// --- sign-in ----------------------------------------------------------------------------------

function signIn(message) {
  document.getElementById("nav").replaceChildren();
  document.getElementById("who").textContent = "";
  let mode = "key";
  const fields = h("div");
  const error = h("p", { class: "error", "data-testid": "signin-error" }, message || "");
  const tabs = h("div", { class: "tabs" });
  const modes = [["key", "Access key"], ["token", "Bearer token"], ["admin", "Operator"]];
  const draw = () => {
    tabs.replaceChildren(...modes.map(([name, title]) =>
      h("button", { type: "button", class: name === mode ? "active" : "", "data-testid": `mode-${name}`, onclick: () => { mode = name; draw(); } }, title)));
    fields.replaceChildren(...(mode === "key"
      ? [h("label", {}, "Access key id", h("input", { name: "id", autocomplete: "username", required: true })),
         h("label", {}, "Access key password", h("input", { name: "secret", type: "password", autocomplete: "current-password", required: true }))]
      : [h("label", {}, mode === "token" ? "Bearer token" : "Admin token (ZBMC_ADMIN_TOKEN)",
           h("input", { name: "secret", type: "password", required: true }))]));
  };
  draw();
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      if (mode === "key" && !globalThis.crypto?.subtle) {
        error.textContent = "Signing needs WebCrypto, which browsers offer only on HTTPS or localhost: "
          + "use `zbmc serve --tls-dev`, open the console on 127.0.0.1, or sign in with a bearer token.";
        return;
      }
      session = { mode, id: String(data.get("id") || "").trim(), secret: String(data.get("secret") || "").trim() };
      try {
        if (mode === "admin") await admin("GET", "clock");
        else await api("DescribeZones", {});
      } catch (problem) {
        session = null;
        error.textContent = problem instanceof ApiError ? problem.message : `Sign-in failed: ${problem}`;
        return;
      }
      sessionStorage.setItem(STORE, JSON.stringify(session));
      location.hash = mode === "admin" ? "#/operator" : "#/instances";
      route();
    },
  }, fields, h("button", { type: "submit", "data-testid": "signin" }, "Sign in"), error);
  render(h("div", { class: "card signin" }, h("h2", {}, "Sign in"), tabs, form,
    h("p", { class: "muted" }, "Credentials stay in this browser tab (sessionStorage); requests are signed here.")));
}

function signOut() {
  sessionStorage.removeItem(STORE);
  session = null;
  location.hash = "";
  signIn();
}

function chrome(active) {
  const links = session.mode === "admin"
    ? [["#/operator", "Operator"]]
    : [["#/instances", "Instances"], ["#/account", "Balance & ledger"]];
  document.getElementById("nav").replaceChildren(...links.map(([href, title]) =>
    h("a", { href, class: href === active ? "active" : "" }, title)));
  document.getElementById("who").replaceChildren(
    session.mode === "admin" ? "operator" : session.mode === "token" ? "bearer token" : session.id, " ",
    h("button", { class: "secondary", "data-testid": "signout", onclick: signOut }, "Sign out"));
}

// --- tenant: instances ------------------------------------------------------------------------

const filters = { instanceName: "", zoneId: "", instanceStatus: "", pageNum: 1 };

async function instancesPage() {
  chrome("#/instances");
  const query = { pageNum: filters.pageNum, pageSize: PAGE_SIZE };
  for (const name of ["instanceName", "zoneId", "instanceStatus"]) if (filters[name]) query[name] = filters[name];
  const [list, zones] = await Promise.all([api("DescribeInstances", query), api("DescribeZones", {})]);
  const form = h("form", {
    class: "inline",
    onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(form);
      Object.assign(filters, { instanceName: data.get("instanceName"), zoneId: data.get("zoneId"), instanceStatus: data.get("instanceStatus"), pageNum: 1 });
      instancesPage().catch(fail);
    },
  },
  h("label", {}, "Name (end with * for a prefix)", h("input", { name: "instanceName", value: filters.instanceName, "data-testid": "filter-name" })),
  h("label", {}, "Zone", h("select", { name: "zoneId" }, h("option", { value: "" }, "any"),
    zones.zoneSet.map((zone) => h("option", { value: zone.zoneId, selected: zone.zoneId === filters.zoneId }, zone.zoneId)))),
  h("label", {}, "Status", h("select", { name: "instanceStatus" }, h("option", { value: "" }, "any"),
    ["RUNNING", "STOPPED", "CREATING", "BOOTING", "STOPPING", "INSTALLING", "RECYCLE", "CREATE_FAILED"].map((s) => h("option", { value: s, selected: s === filters.instanceStatus }, s)))),
  h("button", { type: "submit", "data-testid": "filter" }, "Filter"));
  const pages = Math.max(1, Math.ceil(list.totalCount / PAGE_SIZE));
  const go = (page) => { filters.pageNum = page; instancesPage().catch(fail); };
  render(
    h("h2", {}, "Instances"), form,
    h("details", { "data-testid": "create" }, h("summary", {}, "Create instances…"), createForm(zones.zoneSet)),
    table([
      ["Instance", (i) => h("a", { href: `#/instance/${i.instanceId}` }, i.instanceName || i.instanceId)],
      ["Id", (i) => h("code", {}, i.instanceId)],
      ["Zone", (i) => i.zoneId],
      ["Type", (i) => i.instanceTypeId],
      ["Status", (i) => h("span", { class: `status-${i.instanceStatus}` }, i.instanceStatus)],
      ["Billing", (i) => `${i.instanceChargeType} / ${i.internetChargeType}`],
      ["Mbps", (i) => show(i.bandwidthOutMbps), "num"],
      ["Package TB", (i) => show(i.trafficPackageSize), "num"],
      ["Expires", (i) => show(i.expiredTime)],
    ], list.dataSet, "instances"),
    h("div", { class: "pager" },
      h("button", { class: "secondary", disabled: filters.pageNum <= 1, onclick: () => go(filters.pageNum - 1) }, "‹ Previous"),
      h("span", { "data-testid": "page" }, `page ${filters.pageNum} of ${pages} · ${list.totalCount} instances`),
      h("button", { class: "secondary", disabled: filters.pageNum >= pages, onclick: () => go(filters.pageNum + 1) }, "Next ›")));
}

// CreateInstances, priced first with InquiryPriceCreateInstance (the same body).
function createForm(zoneSet) {
  const result = h("div", { "data-testid": "create-quote" });
  const imageSelect = h("select", { name: "imageId", "data-testid": "create-image" }, h("option", { value: "" }, "no image"));
  const typeSelect = h("select", {
    name: "instanceTypeId", "data-testid": "create-type",
    onchange: () => loadImages().catch(fail),
  });
  const loadImages = async () => {
    const found = await api("DescribeImages", typeSelect.value ? { instanceTypeId: typeSelect.value } : {});
    imageSelect.replaceChildren(h("option", { value: "" }, "no image"),
      ...found.images.map((i) => h("option", { value: i.imageId }, i.imageName || i.imageId)));
  };
  api("DescribeInstanceTypes", {}).then((found) => {
    typeSelect.replaceChildren(...found.instanceTypes.map((t) => h("option", { value: t.instanceTypeId }, t.instanceTypeId)));
    return loadImages();
  }).catch(fail);
  const form = h("form", { class: "inline" },
    h("label", {}, "Zone", h("select", { name: "zoneId", "data-testid": "create-zone" }, zoneSet.map((z) => h("option", { value: z.zoneId }, z.zoneId)))),
    h("label", {}, "Type", typeSelect),
    h("label", {}, "Image", imageSelect),
    h("label", {}, "Billing", h("select", { name: "instanceChargeType", "data-testid": "create-charge" },
      ["PREPAID", "POSTPAID"].map((v) => h("option", { value: v }, v)))),
    h("label", {}, "Months (prepaid)", h("input", { name: "period", type: "number", min: "1", value: "1" })),
    h("label", {}, "Internet", h("select", { name: "internetChargeType", "data-testid": "create-internet" },
      ["ByBandwidth", "ByTrafficPackage"].map((v) => h("option", { value: v }, v)))),
    h("label", {}, "Mbps", h("input", { name: "internetMaxBandwidthOut", type: "number", min: "1", value: "10", "data-testid": "create-bandwidth" })),
    h("label", {}, "Name", h("input", { name: "instanceName", value: "instance", "data-testid": "create-name" })),
    h("label", {}, "Amount", h("input", { name: "amount", type: "number", min: "1", max: "100", value: "1" })),
    h("label", {}, "Password", h("input", { name: "password", type: "password", "data-testid": "create-password" })),
    h("button", { type: "submit", "data-testid": "create-inquire" }, "Quote price"));
  const body = () => {
    const data = new FormData(form);
    const request = {
      zoneId: data.get("zoneId"), instanceTypeId: data.get("instanceTypeId"),
      instanceChargeType: data.get("instanceChargeType"), internetChargeType: data.get("internetChargeType"),
      internetMaxBandwidthOut: Number(data.get("internetMaxBandwidthOut")),
    };
    if (request.instanceChargeType === "PREPAID") request.instanceChargePrepaid = { period: Number(data.get("period")) };
    return { request, data };
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { request, data } = body();
    try {
      const price = await api("InquiryPriceCreateInstance", request);
      const confirm = h("button", {
        type: "button", "data-testid": "create-confirm",
        onclick: async () => {
          confirm.disabled = true;
          const create = { ...request, instanceName: data.get("instanceName"), amount: Number(data.get("amount")) };
          if (data.get("imageId")) create.imageId = data.get("imageId");
          if (data.get("password")) create.password = data.get("password");
          try {
            const done = await api("CreateInstances", create);
            toast(`Created ${done.instanceIdSet.join(", ")} (order ${show(done.orderNumber)})`);
            await instancesPage();
          } catch (problem) { fail(problem); confirm.disabled = false; }
        },
      }, "Confirm and create");
      const lines = [["instance", [price.instancePrice]], ["bandwidth", price.bandwidthPrice], ["primary IP", [price.primaryIpPrice]]]
        .filter(([, items]) => items && items.length && items[0])
        .map(([title, items]) => `${title}: ${priceLines(items).join("; ")}`);
      result.replaceChildren(h("div", { class: "quote" },
        h("div", { "data-testid": "create-price" }, lines.join(" · ")), confirm));
    } catch (problem) { fail(problem); }
  });
  return h("div", { class: "card" }, form, result);
}

// --- tenant: one instance ---------------------------------------------------------------------

function priceLines(items) {
  if (!items || !items.length) return ["no charge"];
  return items.map((p) => (p.chargeUnit && p.originalPrice === null
    ? `${money(p.discountUnitPrice ?? p.unitPrice)} per ${p.chargeUnit.toLowerCase()}`
    : `${money(p.discountPrice ?? p.originalPrice)} now`));
}

function changeForm({ title, name, unit, quote, apply, after, testid }) {
  const result = h("div", { "data-testid": `${testid}-quote` });
  const input = h("input", { name, type: "number", step: name === "trafficPackageSize" ? "0.05" : "1", min: "0", "data-testid": `${testid}-input` });
  const form = h("form", {
    class: "inline",
    onsubmit: async (event) => {
      event.preventDefault();
      const value = Number(input.value);
      try {
        const price = await quote(value);
        const confirm = h("button", {
          type: "button", "data-testid": `${testid}-confirm`,
          onclick: async () => {
            confirm.disabled = true;
            try {
              const done = await apply(value);
              toast(done.orderNumber ? `Order ${done.orderNumber} placed` : "Nothing to change");
              await after();
            } catch (problem) { fail(problem); confirm.disabled = false; }
          },
        }, "Confirm change");
        result.replaceChildren(h("div", { class: "quote" },
          h("div", {}, `Price for ${value} ${unit}: `, h("strong", { "data-testid": `${testid}-price` }, priceLines(price).join("; "))),
          confirm));
      } catch (problem) { fail(problem); }
    },
  }, h("label", {}, `${title} (${unit})`, input), h("button", { type: "submit", "data-testid": `${testid}-inquire` }, "Quote price"));
  return h("div", {}, form, result);
}

function isoWindow(hours) {
  const end = new Date();
  const start = new Date(end.getTime() - hours * 3600 * 1000);
  const iso = (d) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
  return { startTime: iso(start), endTime: iso(end) };
}

function trafficChart(traffic) {
  const width = 900, height = 260, left = 60, bottom = 24, top = 10;
  const points = traffic.dataList || [];
  const svg = (tag, attrs, ...children) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    node.append(...children);
    return node;
  };
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, "data-testid": "traffic-chart" });
  if (!points.length) {
    chart.append(svg("text", { x: width / 2 - 60, y: height / 2 }, "no traffic samples in this window"));
    return chart;
  }
  const times = points.map((p) => Date.parse(p.time));
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
  const max = Math.max(1, traffic.in95 || 0, traffic.out95 || 0, ...points.map((p) => Math.max(p.internetRX, p.internetTX)));
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - 10);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  const line = (key, cls) => svg("polyline", { class: cls, points: points.map((p, i) => `${x(times[i])},${y(p[key])}`).join(" ") });
  const p95 = Math.max(traffic.in95 || 0, traffic.out95 || 0);
  chart.append(
    svg("line", { class: "axis", x1: left, y1: y(0), x2: width - 10, y2: y(0) }),
    svg("text", { x: 4, y: y(max) + 10 }, `${(max / 1e6).toFixed(2)} Mbps`),
    svg("text", { x: 4, y: y(0) }, "0"),
    line("internetRX", "in"), line("internetTX", "out"),
    svg("line", { class: "p95", x1: left, x2: width - 10, y1: y(p95), y2: y(p95), "data-testid": "p95-line" }),
    svg("text", { x: width - 250, y: y(p95) - 4 }, `95th percentile: ${(p95 / 1e6).toFixed(2)} Mbps (max of in/out)`),
    svg("text", { x: left, y: height - 6 }, new Date(t0).toISOString().slice(0, 16).replace("T", " ")),
    svg("text", { x: width - 120, y: height - 6 }, new Date(t1).toISOString().slice(0, 16).replace("T", " ")));
  return chart;
}

let trafficHours = 24;
const SETTLED = new Set(["RUNNING", "STOPPED", "RECYCLE", "CREATE_FAILED", "INSTALL_FAILED"]);

// A destructive action asks twice: the first click arms the button, the second acts.
function twoStep(testid, title, action) {
  const button = h("button", { class: "danger", "data-testid": testid });
  button.textContent = title;
  button.addEventListener("click", async () => {
    if (!button.dataset.armed) {
      button.dataset.armed = "1";
      button.textContent = `${title}: click again to confirm`;
      return;
    }
    button.disabled = true;
    try { await action(); } catch (problem) { fail(problem); button.disabled = false; }
  });
  return button;
}

async function instancePage(id) {
  chrome("#/instances");
  const instanceId = id || location.hash.split("/")[2];
  const span = isoWindow(trafficHours);
  const [list, status, orders, traffic] = await Promise.all([
    api("DescribeInstances", { instanceIds: [instanceId] }),
    api("DescribeInstanceInternetStatus", { instanceId }),
    account("DescribeOrders", { instanceId, pageSize: 50 }),
    api("DescribeInstanceTraffic", { instanceId, ...span }),
  ]);
  const instance = list.dataSet[0];
  if (!instance) throw new Error(`instance ${instanceId} does not exist (released?)`);
  if (!SETTLED.has(instance.instanceStatus) || status.modifiedBandwidthStatus === "Processing"
      || status.modifiedTrafficPackageStatus === "Processing") {
    // a host operation or a change is under way: look again shortly, as long as this page shows
    setTimeout(() => { if (location.hash === `#/instance/${instanceId}`) instancePage(instanceId).catch(fail); }, 1000);
  }
  const pending = orders.dataSet.filter((o) => o.state === "WAIT_TO_ENABLE" || o.state === "PROCESSING");
  const pendingOf = (kind) => pending.find((o) => o.kind === kind);
  const refresh = () => instancePage(instanceId).catch(fail);
  const act = (action, payload, text) => async () => {
    try { await api(action, payload); toast(text); refresh(); } catch (problem) { fail(problem); }
  };
  const bandwidthOrder = pendingOf("BANDWIDTH");
  const packageOrder = pendingOf("TRAFFIC_PACKAGE");
  const packageTb = status.trafficPackageSize;
  const consumed = packageTb ? (traffic.outTotal || 0) / (packageTb * 1e12) : null;
  render(
    h("p", {}, h("a", { href: "#/instances" }, "‹ Instances")),
    h("h2", { "data-testid": "instance-title" }, instance.instanceName, " ", h("code", {}, instance.instanceId)),
    h("div", { class: "grid" },
      h("div", { class: "card" },
        h("div", {}, "Status: ", h("strong", { class: `status-${instance.instanceStatus}`, "data-testid": "instance-status" }, instance.instanceStatus)),
        h("div", {}, `${instance.zoneId} · ${instance.instanceTypeId} · ${instance.instanceChargeType} / ${instance.internetChargeType}`),
        h("div", { class: "muted" }, `created ${show(instance.createTime)} · expires ${show(instance.expiredTime)}`),
        h("p", {},
          h("button", { "data-testid": "start", disabled: instance.instanceStatus !== "STOPPED", onclick: act("StartInstances", { instanceIds: [instanceId] }, "Starting") }, "Start"), " ",
          h("button", { class: "secondary", "data-testid": "reboot", disabled: instance.instanceStatus !== "RUNNING", onclick: act("RebootInstances", { instanceIds: [instanceId] }, "Rebooting") }, "Reboot"), " ",
          h("button", { class: "danger", "data-testid": "stop", disabled: instance.instanceStatus !== "RUNNING", onclick: act("StopInstances", { instanceIds: [instanceId] }, "Stopping") }, "Stop")),
        h("p", {},
          instance.instanceStatus === "RECYCLE"
            ? twoStep("release", "Release for good", async () => {
              await api("ReleaseInstances", { instanceIds: [instanceId] });
              toast(`Released ${instanceId}`);
              location.hash = "#/instances";
            })
            : twoStep("terminate", instance.instanceChargeType === "PREPAID" ? "Terminate at expiry" : "Terminate", async () => {
              await api("TerminateInstance", { instanceId });
              toast("Terminated");
              refresh();
            }))),
      h("div", { class: "card" },
        h("div", {}, "Bandwidth: ", h("span", { class: "figure", "data-testid": "bandwidth" }, show(status.internetMaxBandwidthOut)), " Mbps"),
        status.modifiedBandwidthStatus && status.modifiedBandwidthStatus !== "Enable"
          ? h("div", { "data-testid": "bandwidth-pending" }, "Pending: ",
              h("strong", { class: status.modifiedBandwidthStatus }, `${show(status.modifiedInternetMaxBandwidthOut)} Mbps (${status.modifiedBandwidthStatus})`),
              bandwidthOrder ? h("span", {}, " effective ", h("strong", { "data-testid": "bandwidth-effective" }, show(bandwidthOrder.effectiveAt))) : null,
              status.modifiedBandwidthStatus === "WaitToEnable"
                ? h("button", { class: "secondary", "data-testid": "bandwidth-cancel", onclick: act("CancelInstanceBandwidthDowngrade", { instanceId }, "Downgrade cancelled") }, "Cancel downgrade")
                : null)
          : h("div", { class: "muted", "data-testid": "bandwidth-pending-none" }, "no pending change"),
        changeForm({
          title: "New bandwidth", name: "bandwidthOutMbps", unit: "Mbps", testid: "bandwidth",
          after: refresh,
          quote: async (v) => (await api("InquiryPriceInstanceBandwidth", { instanceId, bandwidthOutMbps: v })).bandwidthPrice,
          apply: (v) => api("ModifyInstanceBandwidth", { instanceId, bandwidthOutMbps: v }),
        })),
      h("div", { class: "card" },
        h("div", {}, "Traffic package: ", h("span", { class: "figure", "data-testid": "package" }, show(packageTb)), " TB"),
        status.modifiedTrafficPackageStatus && status.modifiedTrafficPackageStatus !== "Enable"
          ? h("div", { "data-testid": "package-pending" }, "Pending: ",
              h("strong", { class: status.modifiedTrafficPackageStatus }, `${show(status.modifiedTrafficPackageSize)} TB (${status.modifiedTrafficPackageStatus})`),
              packageOrder ? h("span", {}, " effective ", h("strong", {}, show(packageOrder.effectiveAt))) : null,
              status.modifiedTrafficPackageStatus === "WaitToEnable"
                ? h("button", { class: "secondary", "data-testid": "package-cancel", onclick: act("CancelInstanceTrafficPackageDowngrade", { instanceId }, "Downgrade cancelled") }, "Cancel downgrade")
                : null)
          : h("div", { class: "muted" }, "no pending change"),
        instance.internetChargeType === "ByTrafficPackage"
          ? changeForm({
            title: "New package", name: "trafficPackageSize", unit: "TB", testid: "package",
            after: refresh,
            quote: async (v) => (await api("InquiryPriceInstanceTrafficPackage", { instanceId, trafficPackageSize: v })).trafficPackagePrice,
            apply: (v) => api("ModifyInstanceTrafficPackage", { instanceId, trafficPackageSize: v }),
          })
          : h("p", { class: "muted" }, "billed by bandwidth: no traffic package"))),
    h("h2", {}, "Traffic"),
    h("form", { class: "inline" },
      h("label", {}, "Window", h("select", {
        "data-testid": "traffic-window",
        onchange: (event) => { trafficHours = Number(event.target.value); refresh(); },
      }, [[1, "last hour"], [6, "last 6 hours"], [12, "last 12 hours"], [24, "last 24 hours (the API's longest window)"]].map(([hours, title]) =>
        h("option", { value: hours, selected: hours === trafficHours }, title))))),
    h("div", { class: "legend" },
      h("span", { class: "in" }, "— in"), h("span", { class: "out" }, "— out"),
      h("span", { class: "p95" }, "- - 95th percentile (the higher of in and out, as billed)"),
      h("span", { "data-testid": "traffic-stats" },
        `out 95th ${((traffic.out95 || 0) / 1e6).toFixed(2)} Mbps · in 95th ${((traffic.in95 || 0) / 1e6).toFixed(2)} Mbps · `
        + `out ${((traffic.outTotal || 0) / 1e9).toFixed(2)} GB · in ${((traffic.inTotal || 0) / 1e9).toFixed(2)} GB`),
      consumed === null ? null : h("span", { "data-testid": "package-consumed" },
        `package consumed in this window: ${(consumed * 100).toFixed(2)} % of ${packageTb} TB`)),
    trafficChart(traffic),
    h("h2", {}, "Orders of this instance"),
    ordersTable(orders.dataSet, "instance-orders"));
}

// Bandwidth orders carry Mbps, package orders GB; period orders (CREATE, RENEW...) carry the
// period's bounds as Unix seconds.
function orderValue(order, value) {
  if (value === null || value === undefined) return "—";
  if (order.kind === "BANDWIDTH") return `${value} Mbps`;
  if (order.kind === "TRAFFIC_PACKAGE") return `${(Number(value) / 1000).toFixed(2)} TB`;
  const seconds = Number(value);
  return seconds > 1e9 ? new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z") : String(value);
}

function ordersTable(rows, testid) {
  return table([
    ["Order", (o) => h("code", {}, o.orderNumber)],
    ["Instance", (o) => o.instanceId ? h("a", { href: `#/instance/${o.instanceId}` }, o.instanceId) : "—"],
    ["Change", (o) => `${o.kind} ${orderValue(o, o.fromValue)} → ${orderValue(o, o.toValue)}`],
    ["Amount", (o) => money(o.amount), "num"],
    ["State", (o) => h("span", { class: `state-${o.state}` }, o.state)],
    ["Created", (o) => show(o.createdAt)],
    ["Effective", (o) => show(o.effectiveAt)],
  ], rows, testid);
}

// --- tenant: balance, ledger, orders ----------------------------------------------------------

let ledgerPage = 1;

async function accountPage() {
  chrome("#/account");
  const [balance, ledger, orders] = await Promise.all([
    account("DescribeBalance", {}),
    account("DescribeLedger", { pageNum: ledgerPage, pageSize: 20 }),
    account("DescribeOrders", { pageSize: 50 }),
  ]);
  const pages = Math.max(1, Math.ceil(ledger.totalCount / 20));
  const go = (page) => { ledgerPage = page; accountPage().catch(fail); };
  render(
    h("div", { class: "card" }, "Balance: ", h("span", { class: "figure", "data-testid": "balance" }, money(balance.balance)), ` ${balance.currency}`),
    h("h2", {}, "Ledger"),
    table([
      ["Time", (e) => e.time],
      ["Kind", (e) => e.kind],
      ["Amount", (e) => money(e.amount), "num"],
      ["Balance after", (e) => money(e.balanceAfter), "num"],
      ["For", (e) => e.description],
      ["Period", (e) => (e.periodStart ? `${e.periodStart} → ${e.periodEnd}` : "—")],
      ["Order", (e) => show(e.orderNumber)],
      ["Instance", (e) => show(e.instanceId)],
    ], ledger.dataSet, "ledger"),
    h("div", { class: "pager" },
      h("button", { class: "secondary", disabled: ledgerPage <= 1, onclick: () => go(ledgerPage - 1) }, "‹ Newer"),
      h("span", {}, `page ${ledgerPage} of ${pages} · ${ledger.totalCount} entries`),
      h("button", { class: "secondary", disabled: ledgerPage >= pages, onclick: () => go(ledgerPage + 1) }, "Older ›")),
    h("h2", {}, "Orders"),
    ordersTable(orders.dataSet, "orders"));
}

// --- operator ---------------------------------------------------------------------------------

async function operatorPage() {
  chrome("#/operator");
  const [clock, worker, tenants, catalogue, events] = await Promise.all(
    ["clock", "worker", "tenants", "catalogue", "events"].map((path) => admin("GET", path)));
  const advance = h("form", {
    class: "inline",
    onsubmit: async (event) => {
      event.preventDefault();
      const data = new FormData(advance);
      const seconds = Number(data.get("amount")) * Number(data.get("unit"));
      try {
        const moved = await admin("POST", "clock/advance", { seconds });
        toast(`Billing clock now ${moved.now}`);
        operatorPage().catch(fail);
      } catch (problem) { fail(problem); }
    },
  },
  h("label", {}, "Advance by", h("input", { name: "amount", type: "number", min: "1", value: "1", "data-testid": "advance-amount" })),
  h("label", {}, "Unit", h("select", { name: "unit", "data-testid": "advance-unit" },
    [[3600, "hours"], [86400, "days"]].map(([v, t]) => h("option", { value: v, selected: v === 86400 }, t)))),
  h("button", { type: "submit", "data-testid": "advance", disabled: clock.mode !== "simulated" }, "Advance simulated time"));
  render(
    h("div", { class: "grid" },
      h("div", { class: "card" },
        h("div", {}, "Billing clock (", h("span", { "data-testid": "clock-mode" }, clock.mode), ")"),
        h("div", { class: "figure", "data-testid": "clock-now" }, clock.now),
        clock.mode === "simulated" ? advance : h("p", { class: "muted" }, "system clock: `zbmc admin clock simulate` makes it movable")),
      h("div", { class: "card" },
        h("div", {}, "Worker lag: ", h("span", { class: "figure", "data-testid": "worker-lag" }, worker.lagSeconds), " s"),
        h("div", {}, `${worker.dueOrders} orders due, ${worker.scheduledOrders} scheduled for later`))),
    h("h2", {}, "Tenants"),
    table([
      ["Tenant", (t) => h("code", {}, t.tenantId)], ["Name", (t) => t.name],
      ["Balance", (t) => money(t.balance), "num"], ["Currency", (t) => t.currency],
      ["Instances", (t) => t.instances, "num"], ["Created", (t) => t.createdAt],
    ], tenants.tenants, "tenants"),
    h("h2", {}, "Recent events"),
    table([
      ["Time", (e) => show(e.time)], ["Tenant", (e) => h("code", {}, e.tenantId)], ["Event", (e) => e.event],
      ["State", (e) => h("span", { class: `state-${e.state}` }, e.state)], ["Amount", (e) => e.amount, "num"],
      ["Reference", (e) => h("code", {}, e.reference)],
    ], events.events, "events"),
    h("h2", {}, "Catalogue"),
    table([["Zone", (z) => z.zone_id], ["Name", (z) => z.zone_name], ["City", (z) => z.city_name]], catalogue.zones, "zones"),
    h("p"),
    table([
      ["Type", (t) => t.instance_type_id], ["Description", (t) => t.description], ["CPUs", (t) => t.cpu_core_count, "num"],
      ["Memory GB", (t) => t.memory_size, "num"], ["Max Mbps", (t) => t.maximum_bandwidth, "num"], ["HA", (t) => (t.is_ha ? "yes" : "")],
    ], catalogue.instanceTypes, "instance-types"),
    h("p"),
    table([
      ["Zone", (o) => o.zone_id], ["Type", (o) => o.instance_type_id], ["Charge types", (o) => show(o.instance_charge_types)],
      ["Internet", (o) => show(o.internet_charge_types)], ["Default Mbps", (o) => show(o.default_bandwidth_out), "num"],
      ["Month", (o) => show(o.instance_month), "num"], ["Mbps / month", (o) => show(o.bandwidth_month), "num"],
      ["TB / month", (o) => show(o.traffic_tb_month), "num"], ["Overage / GB", (o) => show(o.overage_gb), "num"],
    ], catalogue.offerings, "offerings"));
}

// --- routing ----------------------------------------------------------------------------------

async function route() {
  if (!session) return signIn();
  const hash = location.hash || (session.mode === "admin" ? "#/operator" : "#/instances");
  try {
    if (session.mode === "admin") await operatorPage();
    else if (hash.startsWith("#/instance/")) await instancePage();
    else if (hash.startsWith("#/account")) await accountPage();
    else await instancesPage();
  } catch (problem) {
    if (problem instanceof ApiError && problem.code.startsWith("AUTHFAILURE")) {
      sessionStorage.removeItem(STORE);
      session = null;
      return signIn(`Signed out: ${problem.message}`);
    }
    fail(problem);
  }
}

window.addEventListener("hashchange", route);
route();
