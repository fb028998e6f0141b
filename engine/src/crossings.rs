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
