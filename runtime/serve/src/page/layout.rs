//! Where the boxes and arrows of the app's graph go: a layered drawing, importers above the
//! modules they link to, computed on the server for each page.
//!
//! The classic steps of a layered (Sugiyama) drawing, each kept simple because an app has
//! one to a few dozen modules:
//! 1. layers by the longest chain of links above a node, so every provider sits below all
//!    of its importers;
//! 2. an edge that spans several layers gets a bend in each layer it crosses, which takes a
//!    narrow slot in that row, so that the edge passes between boxes, not through them;
//! 3. a few sweeps down and up order each row by the mean position of its neighbours in the
//!    row before (the barycenter heuristic), which removes most crossings;
//! 4. rows are packed left to right and centred; boxes of a row share their top;
//! 5. each edge's label sits on the edge's first stretch, in the gap below its importer, in
//!    the first of a few horizontal lanes where it overlaps no other label; the gap grows by
//!    a lane until every label fits.
//!
//! Consecutive points of a [`Route`] are joined by a cubic curve with vertical tangents
//! (control points `(x0, ym)` and `(x1, ym)`, `ym` halfway down): labels are placed on
//! that curve, so the drawing must use the same one.

/// The size of a box or a label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Size {
    pub width: f64,
    pub height: f64,
}

/// An edge to draw, from node `from` (above) to node `to` (below), with a label.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EdgeIn {
    pub from: usize,
    pub to: usize,
    pub label: Size,
}

/// A point of the drawing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub x: f64,
    pub y: f64,
}

/// Where a box goes: its top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// Where an edge goes: the points it passes through (see the module docs for the curve)
/// and the centre of its label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Route {
    pub points: Vec<Point>,
    pub label: Point,
}

/// The whole drawing, in the order of the input nodes and edges.
#[derive(Debug, Clone)]
pub(crate) struct Drawing {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<Rect>,
    pub edges: Vec<Route>,
}

const MARGIN: f64 = 16.0;
/// Between two boxes (or bends) of a row.
const ROW_GAP: f64 = 32.0;
/// The slot a bend takes in a row.
const BEND_WIDTH: f64 = 12.0;
/// The smallest gap between two rows.
const MIN_GAP: f64 = 72.0;
/// Above the first lane of labels and below the last, room for the curves and arrowheads.
const LANE_PAD: f64 = 20.0;
/// Between two lanes of labels, and between two labels of a lane.
const LABEL_SEP: f64 = 6.0;
const SWEEPS: usize = 6;

/// Lays out `nodes` and `edges`. Edges that point up or to themselves (there are none in an
/// app: cycles are refused when it loads) are drawn as a single curve.
pub(crate) fn layout(nodes: &[Size], edges: &[EdgeIn]) -> Drawing {
    let p = Placed::new(nodes, edges);
    let rows = p.g.rows.len();
    // The gaps between rows, top down, and the labels in them.
    let mut gaps = Vec::with_capacity(rows);
    let mut label_at: Vec<Option<Point>> = vec![None; edges.len()];
    for r in 0..rows.saturating_sub(1) {
        let (gap, labels) = p.gap(r);
        gaps.push(gap);
        for (e, at) in labels {
            label_at[e] = Some(at);
        }
    }
    let mut top = vec![MARGIN; rows];
    for r in 1..rows {
        top[r] = top[r - 1] + p.heights[r - 1] + gaps[r - 1];
    }
    let rects: Vec<Rect> = (0..nodes.len())
        .map(|n| Rect {
            x: p.x[n].0,
            y: top[p.layer[n]],
            width: nodes[n].width,
            height: nodes[n].height,
        })
        .collect();
    let routes = (0..edges.len())
        .map(|e| p.route(e, &top, &rects, label_at[e]))
        .collect();
    fit(rects, routes, edges)
}

/// The drawing once its rows are ordered and packed: everything but the heights of the
/// gaps between rows, which depend on the labels in them.
struct Placed<'a> {
    nodes: &'a [Size],
    edges: &'a [EdgeIn],
    layer: Vec<usize>,
    g: Grid,
    /// Each item's left edge and width.
    x: Vec<(f64, f64)>,
    /// Each row's height: its tallest box (a row always has one: layers are contiguous).
    heights: Vec<f64>,
    starts: Starts,
}

impl<'a> Placed<'a> {
    fn new(nodes: &'a [Size], edges: &'a [EdgeIn]) -> Placed<'a> {
        let layer = layers(nodes.len(), edges);
        let mut g = Grid::new(nodes, edges, &layer);
        g.order();
        let x = g.columns();
        let heights = g
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .filter_map(|&i| g.node_of(i).map(|n| nodes[n].height))
                    .fold(0.0, f64::max)
            })
            .collect();
        let starts = Starts::new(&g, &x);
        Placed {
            nodes,
            edges,
            layer,
            g,
            x,
            heights,
            starts,
        }
    }

    fn centre(&self, item: usize) -> f64 {
        self.x[item].0 + self.x[item].1 / 2.0
    }

    /// The height of the gap below row `r` and the centres of the labels in it, relative
    /// to the row's bottom.
    fn gap(&self, r: usize) -> (f64, Vec<(usize, Point)>) {
        let (edges, g) = (self.edges, &self.g);
        let first: Vec<usize> = (0..edges.len())
            .filter(|&e| g.forward(e) && self.layer[edges[e].from] == r)
            .collect();
        let stretch = |e: usize, gap: f64| {
            let start = Point {
                x: self.starts.out[e],
                y: self.nodes[edges[e].from].height - self.heights[r],
            };
            let next = g.chains[e][1];
            let end_x = match g.node_of(next) {
                Some(_) => self.starts.into[e],
                None => self.centre(next),
            };
            (start, Point { x: end_x, y: gap })
        };
        // Edges fanning out of one box spread apart further down: their labels go low;
        // edges fanning into one box, high.
        let count =
            |f: &dyn Fn(usize) -> usize, e: usize| first.iter().filter(|&&o| f(o) == f(e)).count();
        let low = |e: usize| count(&|o| edges[o].from, e) > count(&|o| g.chains[o][1], e);
        lanes(&first, |e| edges[e].label, low, stretch)
    }

    /// Edge `e` through its bends, once the rows' tops are known; `label` is relative to
    /// the bottom of the importer's row.
    fn route(&self, e: usize, top: &[f64], rects: &[Rect], label: Option<Point>) -> Route {
        let EdgeIn { from, to, .. } = self.edges[e];
        let chain = &self.g.chains[e];
        let mut points = vec![Point {
            x: self.starts.out[e],
            y: rects[from].y + rects[from].height,
        }];
        for &b in &chain[1..chain.len() - 1] {
            let r = self.g.row_of[b];
            let x = self.centre(b);
            points.push(Point { x, y: top[r] });
            points.push(Point {
                x,
                y: top[r] + self.heights[r],
            });
        }
        points.push(Point {
            x: self.starts.into[e],
            y: rects[to].y,
        });
        let row = self.layer[from];
        let label = match label {
            Some(p) => Point {
                x: p.x,
                y: top[row] + self.heights[row] + p.y,
            },
            None => midpoint(points[0], points[points.len() - 1]),
        };
        Route { points, label }
    }
}

/// Each node's layer: the longest chain of edges above it (capped, so that a cycle ends).
fn layers(n: usize, edges: &[EdgeIn]) -> Vec<usize> {
    let mut layer = vec![0usize; n];
    for _ in 0..n {
        let mut changed = false;
        for e in edges {
            let below = layer[e.from] + 1;
            if e.from != e.to && layer[e.to] < below && below < n {
                layer[e.to] = below;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

/// The rows of boxes and bends. Items `0..nodes` are the nodes; the rest are bends.
struct Grid {
    nodes: usize,
    /// Each item's row.
    row_of: Vec<usize>,
    /// Each item's width.
    width: Vec<f64>,
    /// The items of each row, in drawing order.
    rows: Vec<Vec<usize>>,
    /// Each edge's items from its importer to its provider.
    chains: Vec<Vec<usize>>,
    /// Each item's neighbours in the row above and in the row below.
    up: Vec<Vec<usize>>,
    down: Vec<Vec<usize>>,
}

impl Grid {
    fn new(nodes: &[Size], edges: &[EdgeIn], layer: &[usize]) -> Grid {
        let rows = layer.iter().max().map_or(0, |m| m + 1);
        let mut g = Grid {
            nodes: nodes.len(),
            row_of: layer.to_vec(),
            width: nodes.iter().map(|n| n.width).collect(),
            rows: vec![Vec::new(); rows],
            chains: Vec::with_capacity(edges.len()),
            up: vec![Vec::new(); nodes.len()],
            down: vec![Vec::new(); nodes.len()],
        };
        for (n, &l) in layer.iter().enumerate() {
            g.rows[l].push(n);
        }
        for e in edges {
            let mut chain = vec![e.from];
            if layer[e.to] > layer[e.from] {
                for r in layer[e.from] + 1..layer[e.to] {
                    let b = g.row_of.len();
                    g.row_of.push(r);
                    g.width.push(BEND_WIDTH);
                    g.rows[r].push(b);
                    g.up.push(Vec::new());
                    g.down.push(Vec::new());
                    chain.push(b);
                }
            }
            chain.push(e.to);
            for pair in chain.windows(2) {
                if g.row_of[pair[0]] + 1 == g.row_of[pair[1]] {
                    g.down[pair[0]].push(pair[1]);
                    g.up[pair[1]].push(pair[0]);
                }
            }
            g.chains.push(chain);
        }
        g
    }

    fn node_of(&self, item: usize) -> Option<usize> {
        (item < self.nodes).then_some(item)
    }

    /// Whether edge `e` goes down (every edge of an app does).
    fn forward(&self, e: usize) -> bool {
        let c = &self.chains[e];
        self.row_of[c[0]] < self.row_of[c[c.len() - 1]]
    }

    /// Orders each row by the barycenter of its neighbours, sweeping down and up.
    fn order(&mut self) {
        let mut pos = vec![0.0; self.row_of.len()];
        for row in &self.rows {
            for (i, &item) in row.iter().enumerate() {
                pos[item] = i as f64;
            }
        }
        let rows = self.rows.len();
        for sweep in 0..SWEEPS {
            let (range, by): (Vec<usize>, &Vec<Vec<usize>>) = if sweep % 2 == 0 {
                ((1..rows).collect(), &self.up)
            } else {
                ((0..rows.saturating_sub(1)).rev().collect(), &self.down)
            };
            for r in range {
                let key = |item: usize| {
                    let ns = &by[item];
                    if ns.is_empty() {
                        pos[item]
                    } else {
                        ns.iter().map(|&n| pos[n]).sum::<f64>() / ns.len() as f64
                    }
                };
                let mut keyed: Vec<(f64, usize)> =
                    self.rows[r].iter().map(|&i| (key(i), i)).collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                self.rows[r] = keyed.into_iter().map(|(_, i)| i).collect();
                for (i, &item) in self.rows[r].iter().enumerate() {
                    pos[item] = i as f64;
                }
            }
        }
    }

    /// Each item's left edge and width: rows packed with [`ROW_GAP`] and centred.
    fn columns(&self) -> Vec<(f64, f64)> {
        let row_width = |row: &Vec<usize>| {
            row.iter().map(|&i| self.width[i]).sum::<f64>()
                + ROW_GAP * row.len().saturating_sub(1) as f64
        };
        let widest = self.rows.iter().map(row_width).fold(0.0, f64::max);
        let mut x = vec![(0.0, 0.0); self.row_of.len()];
        for row in &self.rows {
            let mut left = MARGIN + (widest - row_width(row)) / 2.0;
            for &i in row {
                x[i] = (left, self.width[i]);
                left += self.width[i] + ROW_GAP;
            }
        }
        x
    }
}

/// Where each edge leaves its importer's bottom and enters its provider's top: a box's
/// edges are spread along its side in the order of where they go (or come from).
struct Starts {
    out: Vec<f64>,
    into: Vec<f64>,
}

impl Starts {
    fn new(g: &Grid, x: &[(f64, f64)]) -> Starts {
        let centre = |i: usize| x[i].0 + x[i].1 / 2.0;
        let edges = g.chains.len();
        let mut out = vec![0.0; edges];
        let mut into = vec![0.0; edges];
        for (n, &(left, width)) in x.iter().enumerate().take(g.nodes) {
            let spread = |mut ends: Vec<(f64, usize)>, at: &mut [f64]| {
                ends.sort_by(|a, b| a.0.total_cmp(&b.0));
                let k = ends.len() as f64;
                for (i, (_, e)) in ends.into_iter().enumerate() {
                    at[e] = left + width * (i as f64 + 1.0) / (k + 1.0);
                }
            };
            let leaving = (0..edges)
                .filter(|&e| g.chains[e][0] == n)
                .map(|e| (centre(g.chains[e][1]), e))
                .collect();
            spread(leaving, &mut out);
            let entering = (0..edges)
                .filter(|&e| g.chains[e][g.chains[e].len() - 1] == n)
                .map(|e| (centre(g.chains[e][g.chains[e].len() - 2]), e))
                .collect();
            spread(entering, &mut into);
        }
        Starts { out, into }
    }
}

/// Puts the labels of the edges whose first stretch crosses one gap into lanes, trying the
/// lowest lane first for the edges where `low` holds. `stretch` gives an edge's first
/// stretch for a gap height, relative to the row's bottom. Returns the gap's height and
/// each label's centre.
fn lanes(
    edges: &[usize],
    label: impl Fn(usize) -> Size,
    low: impl Fn(usize) -> bool,
    stretch: impl Fn(usize, f64) -> (Point, Point),
) -> (f64, Vec<(usize, Point)>) {
    if edges.is_empty() {
        return (MIN_GAP, Vec::new());
    }
    let lane = edges.iter().map(|&e| label(e).height).fold(0.0, f64::max) + LABEL_SEP;
    for count in 1..=edges.len() {
        let gap = (2.0 * LANE_PAD + lane * count as f64).max(MIN_GAP);
        let first = (gap - lane * count as f64) / 2.0;
        let lane_y = |k: usize| first + lane * (k as f64 + 0.5);
        let mut order: Vec<usize> = edges.to_vec();
        let mid = |e: usize| {
            let (a, b) = stretch(e, gap);
            (a.x + b.x) / 2.0
        };
        order.sort_by(|&a, &b| mid(a).total_cmp(&mid(b)));
        let mut taken: Vec<Vec<(f64, f64)>> = vec![Vec::new(); count];
        let mut placed = Vec::with_capacity(edges.len());
        for &e in &order {
            let (a, b) = stretch(e, gap);
            let half = label(e).width / 2.0;
            let mut tries: Vec<usize> = (0..count).collect();
            if low(e) {
                tries.reverse();
            }
            let spot = tries.into_iter().find_map(|k| {
                let y = lane_y(k);
                let x = x_at(a, b, y);
                let (lo, hi) = (x - half, x + half);
                let free = taken[k]
                    .iter()
                    .all(|&(l, h)| hi + LABEL_SEP <= l || lo >= h + LABEL_SEP);
                free.then_some((k, Point { x, y }, (lo, hi)))
            });
            match spot {
                Some((k, p, span)) => {
                    taken[k].push(span);
                    placed.push((e, p));
                }
                None => break,
            }
        }
        if placed.len() == edges.len() {
            return (gap, placed);
        }
    }
    // One lane per label always fits (the last label placed finds a lane of its own); should
    // the geometry ever say otherwise (a NaN from odd input), each label gets its own lane
    // rather than the page failing.
    let count = edges.len();
    let gap = (2.0 * LANE_PAD + lane * count as f64).max(MIN_GAP);
    let first = (gap - lane * count as f64) / 2.0;
    let placed = edges
        .iter()
        .enumerate()
        .map(|(k, &e)| {
            let (a, b) = stretch(e, gap);
            let y = first + lane * (k as f64 + 0.5);
            (
                e,
                Point {
                    x: x_at(a, b, y),
                    y,
                },
            )
        })
        .collect();
    (gap, placed)
}

/// The x of the curve from `a` to `b` (see the module docs) where it crosses `y`.
fn x_at(a: Point, b: Point, y: f64) -> f64 {
    if (b.y - a.y).abs() < f64::EPSILON {
        return (a.x + b.x) / 2.0;
    }
    let ym = (a.y + b.y) / 2.0;
    let y_of = |t: f64| {
        let u = 1.0 - t;
        u * u * u * a.y + 3.0 * u * t * ym + t * t * t * b.y
    };
    // y grows (or shrinks) monotonically along the curve: bisect for t.
    let rising = b.y > a.y;
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if (y_of(mid) < y) == rising {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = (lo + hi) / 2.0;
    // x(t) of a curve with control points (x0, ym) and (x1, ym).
    a.x + (b.x - a.x) * (3.0 * t * t - 2.0 * t * t * t)
}

fn midpoint(a: Point, b: Point) -> Point {
    Point {
        x: (a.x + b.x) / 2.0,
        y: (a.y + b.y) / 2.0,
    }
}

/// Moves everything so that the boxes and labels start at the margin, and measures it.
fn fit(mut rects: Vec<Rect>, mut routes: Vec<Route>, edges: &[EdgeIn]) -> Drawing {
    let mut lo = (f64::INFINITY, f64::INFINITY);
    let mut hi = (0.0f64, 0.0f64);
    let mut grow = |x0: f64, y0: f64, x1: f64, y1: f64| {
        lo = (lo.0.min(x0), lo.1.min(y0));
        hi = (hi.0.max(x1), hi.1.max(y1));
    };
    for r in &rects {
        grow(r.x, r.y, r.x + r.width, r.y + r.height);
    }
    for (route, e) in routes.iter().zip(edges) {
        let (w, h) = (e.label.width / 2.0, e.label.height / 2.0);
        grow(
            route.label.x - w,
            route.label.y - h,
            route.label.x + w,
            route.label.y + h,
        );
    }
    if rects.is_empty() {
        return Drawing {
            width: 2.0 * MARGIN,
            height: 2.0 * MARGIN,
            nodes: rects,
            edges: routes,
        };
    }
    let (dx, dy) = (MARGIN - lo.0, MARGIN - lo.1);
    for r in &mut rects {
        r.x += dx;
        r.y += dy;
    }
    for route in &mut routes {
        for p in &mut route.points {
            p.x += dx;
            p.y += dy;
        }
        route.label.x += dx;
        route.label.y += dy;
    }
    Drawing {
        width: hi.0 + dx + MARGIN,
        height: hi.1 + dy + MARGIN,
        nodes: rects,
        edges: routes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(width: f64) -> Size {
        Size {
            width,
            height: 60.0,
        }
    }

    fn edge(from: usize, to: usize) -> EdgeIn {
        EdgeIn {
            from,
            to,
            label: Size {
                width: 120.0,
                height: 14.0,
            },
        }
    }

    fn overlap(a: &Rect, b: &Rect) -> bool {
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
    }

    #[test]
    fn providers_sit_below_their_importers() {
        // web -> store, web -> render, store -> render
        let d = layout(
            &[node(200.0), node(150.0), node(180.0)],
            &[edge(0, 1), edge(0, 2), edge(1, 2)],
        );
        let [web, store, render] = [d.nodes[0], d.nodes[1], d.nodes[2]];
        assert!(web.y + web.height < render.y);
        assert!(web.y + web.height < store.y);
        // render is imported by store too, so it is a row further down.
        assert!(render.y > store.y + store.height, "{d:?}");
        assert!(d.width >= 200.0 && d.height > 3.0 * 60.0);
    }

    #[test]
    fn boxes_never_overlap_and_edges_end_on_their_boxes() {
        let nodes: Vec<Size> = (0..12).map(|i| node(100.0 + 10.0 * i as f64)).collect();
        let edges: Vec<EdgeIn> = [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 5), (4, 6)]
            .into_iter()
            .chain([(6, 7), (0, 7), (8, 9), (9, 10), (8, 11), (1, 11)])
            .map(|(a, b)| edge(a, b))
            .collect();
        let d = layout(&nodes, &edges);
        for (i, a) in d.nodes.iter().enumerate() {
            assert!(a.x >= 0.0 && a.x + a.width <= d.width && a.y + a.height <= d.height);
            for b in &d.nodes[i + 1..] {
                assert!(!overlap(a, b), "{a:?} overlaps {b:?}");
            }
        }
        for (e, route) in edges.iter().zip(&d.edges) {
            let (from, to) = (d.nodes[e.from], d.nodes[e.to]);
            let (first, last) = (route.points[0], route.points[route.points.len() - 1]);
            assert_eq!(first.y, from.y + from.height);
            assert!(first.x > from.x && first.x < from.x + from.width);
            assert_eq!(last.y, to.y);
            assert!(last.x > to.x && last.x < to.x + to.width);
            // The label is in the gap below the importer.
            assert!(route.label.y > first.y && route.label.y < route.points[1].y);
        }
    }

    #[test]
    fn labels_of_one_gap_do_not_overlap() {
        // One importer with five providers: five labels in one gap.
        let nodes: Vec<Size> = (0..6).map(|_| node(90.0)).collect();
        let edges: Vec<EdgeIn> = (1..6).map(|p| edge(0, p)).collect();
        let d = layout(&nodes, &edges);
        let boxes: Vec<Rect> = edges
            .iter()
            .zip(&d.edges)
            .map(|(e, r)| Rect {
                x: r.label.x - e.label.width / 2.0,
                y: r.label.y - e.label.height / 2.0,
                width: e.label.width,
                height: e.label.height,
            })
            .collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                assert!(!overlap(a, b), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn a_long_edge_bends_through_the_rows_it_crosses() {
        // a -> b -> c and a -> c: a -> c passes through b's row beside b.
        let d = layout(
            &[node(100.0), node(100.0), node(100.0)],
            &[edge(0, 1), edge(1, 2), edge(0, 2)],
        );
        let long = &d.edges[2];
        assert_eq!(long.points.len(), 4);
        let b = d.nodes[1];
        let bend = long.points[1];
        assert!(bend.x < b.x || bend.x > b.x + b.width, "{d:?}");
    }

    #[test]
    fn a_cycle_or_an_empty_graph_still_draws() {
        let d = layout(&[node(80.0), node(80.0)], &[edge(0, 1), edge(1, 0)]);
        assert_eq!(d.edges.len(), 2);
        let d = layout(&[], &[]);
        assert!(d.nodes.is_empty() && d.width > 0.0);
    }
}
