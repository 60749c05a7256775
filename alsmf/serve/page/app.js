// The alsmf page: search titles, rate them with stars, see recommendations update.
//
// Ratings live in this browser (localStorage) and are sent whole to POST /api/rate, which
// folds them into a user for that request only. Every element is built with textContent,
// never innerHTML, so a title cannot inject markup.
"use strict";

const STORE = "alsmf-ratings";
const KEY_STORE = "alsmf-api-key";
const state = {
  ratings: new Map(JSON.parse(localStorage.getItem(STORE) || "[]")),
  stars: [1, 2, 3, 4, 5],
  recsRequest: 0,
  searchRequest: 0,
};
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ talking to the API
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, { ...options, headers });
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = { error: `the server answered ${response.status} without JSON` };
  }
  if (response.status === 401) {
    $("key-form").hidden = false;
    $("key").focus();
  }
  if (!response.ok) throw new Error(body.error || `error ${response.status}`);
  return body;
}

// ------------------------------------------------------------------ building items
function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function itemName(entry) {
  return entry.title || `item ${entry.item}`;
}

function starWidget(entry, list) {
  const group = element("fieldset", "stars");
  group.append(element("legend", null, `Rate ${itemName(entry)}`));
  const current = state.ratings.get(entry.item)?.rating;
  const name = `stars-${list}-${entry.item}`;
  for (const value of state.stars) {
    const input = element("input");
    input.type = "radio";
    input.name = name;
    input.value = String(value);
    input.id = `${name}-${value}`;
    input.checked = current === value;
    input.dataset.item = String(entry.item);
    const label = element("label", current >= value ? "on" : "", "★");
    label.htmlFor = input.id;
    label.title = `${value} of ${state.stars.length}`;
    label.append(element("span", "visually-hidden", ` ${value} stars`));
    input.addEventListener("change", () => rate(entry, value));
    group.append(input, label);
  }
  return group;
}

function itemRow(entry, list, { showRating = false } = {}) {
  const row = element("li");
  row.dataset.item = String(entry.item);
  const main = element("div", "item-main");
  main.append(element("div", "title", itemName(entry)));
  if (entry.genres && entry.genres.length) {
    main.append(element("div", "genres", entry.genres.join(" · ")));
  }
  if (showRating && entry.predicted !== null && entry.predicted !== undefined) {
    main.append(element("div", "predicted", `predicted ${entry.predicted.toFixed(1)} ★`));
  }
  if (entry.because && entry.because.items.length) {
    const reasons = entry.because.items.map((r) => {
      const sign = r.contribution >= 0 ? "+" : "";
      return `${itemName(r)} (${r.rating}★, ${sign}${r.contribution.toFixed(2)})`;
    });
    main.append(element("div", "because", `Because you rated ${reasons.join("; ")}`));
  }
  const actions = element("div", "actions");
  actions.append(starWidget(entry, list));
  const more = element("button", "quiet", "More like this");
  more.type = "button";
  more.setAttribute("aria-label", `More like ${itemName(entry)}`);
  more.addEventListener("click", () => showSimilar(entry));
  actions.append(more);
  if (list === "rated") {
    const remove = element("button", "quiet", "Remove");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove your rating of ${itemName(entry)}`);
    remove.addEventListener("click", () => unrate(entry.item));
    actions.append(remove);
  }
  row.append(main, actions);
  return row;
}

// ------------------------------------------------------------------ rating
function saveRatings() {
  localStorage.setItem(STORE, JSON.stringify([...state.ratings]));
}

function rate(entry, value) {
  state.ratings.set(entry.item, { item: entry.item, title: entry.title, genres: entry.genres,
                                  rating: value });
  afterRatingsChanged(entry.item);
}

function unrate(item) {
  state.ratings.delete(item);
  afterRatingsChanged(item);
}

function afterRatingsChanged(item) {
  saveRatings();
  // every star widget of this item shows the new rating
  const rating = state.ratings.get(item)?.rating;
  document.querySelectorAll(`.stars input[data-item="${item}"]`).forEach((input) => {
    input.checked = Number(input.value) === rating;
    input.nextElementSibling.classList.toggle("on", rating >= Number(input.value));
  });
  renderRated();
  scheduleRecommendations();
}

function renderRated() {
  const list = $("rated");
  const focused = document.activeElement;
  const keepFocus = list.contains(focused) && focused.id;
  list.replaceChildren(...[...state.ratings.values()].map((entry) => itemRow(entry, "rated")));
  $("rated-empty").hidden = state.ratings.size > 0;
  $("clear").hidden = state.ratings.size === 0;
  if (keepFocus && $(keepFocus)) $(keepFocus).focus();
}

// ------------------------------------------------------------------ recommendations
let recsTimer = null;
function scheduleRecommendations() {
  clearTimeout(recsTimer);
  recsTimer = setTimeout(updateRecommendations, 150);
}

async function updateRecommendations() {
  const status = $("recs-status");
  const list = $("recs");
  if (state.ratings.size === 0) {
    list.replaceChildren();
    status.textContent = "Rate a few titles to see recommendations.";
    return;
  }
  const ticket = ++state.recsRequest;
  status.textContent = "Updating…";
  status.classList.remove("error");
  const ratings = [...state.ratings.values()].map((r) => ({ item: r.item, rating: r.rating }));
  try {
    const answer = await api("/api/rate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ratings, n: 10, explain: true }),
    });
    if (ticket !== state.recsRequest) return; // a newer request is on its way
    const rows = answer.items.map((entry) => itemRow(entry, "recs", { showRating: true }));
    const hadFocus = list.contains(document.activeElement);
    list.replaceChildren(...rows);
    // a keyboard user who rated a recommendation lands back on the list, not on the page
    if (hadFocus) $("recs-heading").focus();
    status.textContent = `${answer.items.length} recommendations from your ${ratings.length} ` +
      `rating${ratings.length === 1 ? "" : "s"}.`;
  } catch (error) {
    if (ticket !== state.recsRequest) return;
    status.textContent = error.message;
    status.classList.add("error");
  }
}

// ------------------------------------------------------------------ search
let searchTimer = null;
async function search(text) {
  const status = $("search-status");
  const query = text.trim();
  const ticket = ++state.searchRequest;
  if (!query) {
    $("results").replaceChildren();
    status.textContent = "";
    return;
  }
  try {
    const answer = await api(`/api/search?q=${encodeURIComponent(query)}&n=20`);
    if (ticket !== state.searchRequest) return;
    $("results").replaceChildren(...answer.items.map((entry) => itemRow(entry, "results")));
    status.classList.remove("error");
    status.textContent = answer.total === 0 ? `No title contains “${query}”.`
      : `${answer.total} title${answer.total === 1 ? "" : "s"}` +
        (answer.total > answer.items.length
          ? `, the ${answer.items.length} most rated shown.` : ".");
  } catch (error) {
    if (ticket !== state.searchRequest) return;
    status.textContent = error.message;
    status.classList.add("error");
  }
}

// ------------------------------------------------------------------ more like this
async function showSimilar(entry) {
  const section = $("similar-section");
  const heading = $("similar-heading");
  section.hidden = false;
  heading.textContent = `More like ${itemName(entry)}`;
  try {
    const answer = await api(`/api/similar?item=${entry.item}&n=10`);
    $("similar").replaceChildren(...answer.items.map((other) => itemRow(other, "similar")));
  } catch (error) {
    $("similar").replaceChildren(element("li", "error", error.message));
  }
  heading.focus();
}

// ------------------------------------------------------------------ start
function start() {
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    search($("search").value);
  });
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => search($("search").value), 250);
  });
  $("clear").addEventListener("click", () => {
    state.ratings.clear();
    afterRatingsChanged(null);
    $("search").focus();
  });
  $("close-similar").addEventListener("click", () => {
    $("similar-section").hidden = true;
    $("recs-heading").focus();
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("key").value);
    $("key-form").hidden = true;
    load();
  });
  load();
}

async function load() {
  try {
    const model = await api("/api/model");
    const scale = model.rating_scale || [1, 5];
    const low = Math.max(1, Math.ceil(scale[0]));
    const high = Math.max(low, Math.floor(scale[1]));
    state.stars = Array.from({ length: high - low + 1 }, (_, i) => low + i);
    $("model-line").textContent = `${model.items.toLocaleString()} titles, ` +
      `${model.users.toLocaleString()} users, k = ${model.factors} (model ${model.version})`;
  } catch (error) {
    $("model-line").textContent = error.message;
    return;
  }
  renderRated();
  updateRecommendations();
}

start();
