//! The road crossings Borderflow knows, and their posts: reference data shared
//! by the scenario generator, the example configs and the `posts` table.

/// One post: one side of a crossing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PostInfo {
    /// Unique among all posts that exchange data.
    pub id: &'static str,
    pub name: &'static str,
    /// ISO 3166 alpha-2 code of the country the post stands in.
    pub country: &'static str,
    pub crossing: &'static str,
    /// WGS 84 position of the post's control zone.
    pub lat: f64,
    pub lon: f64,
    /// Lanes per direction; every lane has an arrival and a departure camera.
    pub lanes: u16,
}

/// One road crossing: a Moldovan post and a Ukrainian post on either side of a
/// bridge or a short road.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossingInfo {
    pub id: &'static str,
    pub md: PostInfo,
    pub ua: PostInfo,
    /// Typical vehicles per day in each direction.
    pub vehicles_per_day: u32,
    /// Typical time from one post's departure to the other post's arrival, minutes.
    pub transit_minutes: u32,
}

impl CrossingInfo {
    pub fn posts(&self) -> [&PostInfo; 2] {
        [&self.md, &self.ua]
    }

    /// The post across the border from `post_id`, if it is one of this crossing's.
    pub fn peer_of(&self, post_id: &str) -> Option<&PostInfo> {
        if self.md.id == post_id {
            Some(&self.ua)
        } else if self.ua.id == post_id {
            Some(&self.md)
        } else {
            None
        }
    }
}

const fn post(
    id: &'static str,
    name: &'static str,
    country: &'static str,
    crossing: &'static str,
    lat: f64,
    lon: f64,
    lanes: u16,
) -> PostInfo {
    PostInfo { id, name, country, crossing, lat, lon, lanes }
}

/// The Moldova–Ukraine road crossings of the first deployment.
pub const CROSSINGS: &[CrossingInfo] = &[
    CrossingInfo {
        id: "criva-mamalyha",
        md: post("criva", "Criva", "MD", "criva-mamalyha", 48.2690, 26.6540, 2),
        ua: post("mamalyha", "Mamalyha", "UA", "criva-mamalyha", 48.2620, 26.6150, 2),
        vehicles_per_day: 700,
        transit_minutes: 4,
    },
    CrossingInfo {
        id: "otaci-mohyliv-podilskyi",
        md: post("otaci", "Otaci", "MD", "otaci-mohyliv-podilskyi", 48.4330, 27.7930, 3),
        ua: post("mohyliv-podilskyi", "Mohyliv-Podilskyi", "UA", "otaci-mohyliv-podilskyi", 48.4440, 27.7860, 3),
        vehicles_per_day: 1400,
        transit_minutes: 6,
    },
    CrossingInfo {
        id: "tudora-starokazachie",
        md: post("tudora", "Tudora", "MD", "tudora-starokazachie", 46.4010, 30.0420, 2),
        ua: post("starokazachie", "Starokazachie", "UA", "tudora-starokazachie", 46.3870, 30.0610, 2),
        vehicles_per_day: 500,
        transit_minutes: 5,
    },
    CrossingInfo {
        id: "vulcanesti-vinogradovca",
        md: post("vulcanesti", "Vulcănești", "MD", "vulcanesti-vinogradovca", 45.6870, 28.4060, 2),
        ua: post("vinogradovca", "Vinogradovca", "UA", "vulcanesti-vinogradovca", 45.7080, 28.4340, 2),
        vehicles_per_day: 450,
        transit_minutes: 5,
    },
];

/// Every post of [`CROSSINGS`].
pub fn all_posts() -> impl Iterator<Item = &'static PostInfo> {
    CROSSINGS.iter().flat_map(|c| c.posts())
}

/// The post with this id.
pub fn find_post(post_id: &str) -> Option<&'static PostInfo> {
    all_posts().find(|p| p.id == post_id)
}

/// The crossing with this id.
pub fn find_crossing(crossing_id: &str) -> Option<&'static CrossingInfo> {
    CROSSINGS.iter().find(|c| c.id == crossing_id)
}

/// Great-circle distance between two posts, kilometres.
pub fn distance_km(a: &PostInfo, b: &PostInfo) -> f64 {
    let (la1, lo1, la2, lo2) =
        (a.lat.to_radians(), a.lon.to_radians(), b.lat.to_radians(), b.lon.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// The camera id convention of the example configs and the scenario:
/// `{post}-{direction}-{point}-{lane}`, e.g. `otaci-exit-arrival-1`.
pub fn camera_id(post_id: &str, direction: crate::Direction, point: crate::Point, lane: u16) -> String {
    format!("{post_id}-{direction}-{point}-{lane}")
}

/// Dwell in a control zone above this is flagged (`risk_flags`, rule
/// `long_dwell`); ordinary controls take minutes, queues rarely two hours.
pub const DWELL_THRESHOLD_MINUTES: u32 = 180;

/// The fastest a vehicle is taken to travel between two posts on the road,
/// km/h; quicker than this between two reads of one plate is implausible.
pub const MAX_PLAUSIBLE_KMH: f64 = 130.0;

/// The least time any vehicle needs between two different posts, seconds:
/// their straight-line distance at [`MAX_PLAUSIBLE_KMH`], and never under a
/// minute (the two posts of one crossing are a few kilometres apart).
pub fn min_travel_s(a: &PostInfo, b: &PostInfo) -> i64 {
    ((distance_km(a, b) / MAX_PLAUSIBLE_KMH * 3600.0).round() as i64).max(60)
}

/// The `posts` reference table: one row per post of [`CROSSINGS`] with its
/// name, country, crossing, the post across the border (`neighbour`),
/// lanes, the crossing's usual transit minutes, its position (WGS 84) and
/// its dwell threshold.
pub fn posts_batch() -> arrow::array::RecordBatch {
    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let posts: Vec<(&PostInfo, &CrossingInfo)> = CROSSINGS.iter().flat_map(|c| c.posts().map(move |p| (p, c))).collect();
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("post_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, false),
        Field::new("crossing", DataType::Utf8, false),
        Field::new("neighbour", DataType::Utf8, false),
        Field::new("lanes", DataType::Int64, false),
        Field::new("transit_minutes", DataType::Int64, false),
        Field::new("lat", DataType::Float64, false),
        Field::new("lon", DataType::Float64, false),
        Field::new("dwell_threshold_minutes", DataType::Int64, false),
    ]));
    let text = |f: &dyn Fn(&(&PostInfo, &CrossingInfo)) -> String| -> ArrayRef {
        std::sync::Arc::new(StringArray::from_iter_values(posts.iter().map(f)))
    };
    let int = |f: &dyn Fn(&(&PostInfo, &CrossingInfo)) -> i64| -> ArrayRef {
        std::sync::Arc::new(Int64Array::from_iter_values(posts.iter().map(f)))
    };
    let float = |f: &dyn Fn(&(&PostInfo, &CrossingInfo)) -> f64| -> ArrayRef {
        std::sync::Arc::new(Float64Array::from_iter_values(posts.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|(p, _)| p.id.to_string()),
        text(&|(p, _)| p.name.to_string()),
        text(&|(p, _)| p.country.to_string()),
        text(&|(_, c)| c.id.to_string()),
        text(&|(p, c)| c.peer_of(p.id).map_or(String::new(), |n| n.id.to_string())),
        int(&|(p, _)| i64::from(p.lanes)),
        int(&|(_, c)| i64::from(c.transit_minutes)),
        float(&|(p, _)| p.lat),
        float(&|(p, _)| p.lon),
        int(&|_| i64::from(DWELL_THRESHOLD_MINUTES)),
    ];
    arrow::array::RecordBatch::try_new(schema, columns).expect("columns match the schema")
}

/// The `post_routes` reference table: for every ordered pair of different
/// posts, their straight-line distance and the minimum plausible travel
/// time between them ([`min_travel_s`]).
pub fn post_routes_batch() -> arrow::array::RecordBatch {
    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let pairs: Vec<(&PostInfo, &PostInfo)> =
        all_posts().flat_map(|a| all_posts().filter(move |b| b.id != a.id).map(move |b| (a, b))).collect();
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("from_post", DataType::Utf8, false),
        Field::new("to_post", DataType::Utf8, false),
        Field::new("distance_km", DataType::Float64, false),
        Field::new("min_travel_s", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        std::sync::Arc::new(StringArray::from_iter_values(pairs.iter().map(|(a, _)| a.id))),
        std::sync::Arc::new(StringArray::from_iter_values(pairs.iter().map(|(_, b)| b.id))),
        std::sync::Arc::new(Float64Array::from_iter_values(pairs.iter().map(|(a, b)| distance_km(a, b)))),
        std::sync::Arc::new(Int64Array::from_iter_values(pairs.iter().map(|(a, b)| min_travel_s(a, b)))),
    ];
    arrow::array::RecordBatch::try_new(schema, columns).expect("columns match the schema")
}
