//! An RTSP server on 127.0.0.1 (gstreamer-rtsp-server) serving a rendered
//! clip, for the tests of live cameras. Each client gets the clip from its
//! start, paced in real time.

use std::path::Path;
use std::sync::mpsc::channel;
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer_rtsp_server::prelude::*;
use gstreamer_rtsp_server::{RTSPClient, RTSPFilterResult, RTSPMediaFactory, RTSPServer};

/// An RTSP server on 127.0.0.1 serving one clip at `/lane`, on its own main loop.
pub struct RtspServer {
    pub port: u16,
    server: RTSPServer,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
}

impl RtspServer {
    /// Serves `clip` on `port` (0: a free port).
    pub fn start(clip: &Path, port: u16) -> RtspServer {
        gst::init().expect("GStreamer initialises");
        let launch = format!(
            "( filesrc location={} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )",
            clip.display()
        );
        let (sender, receiver) = channel();
        let thread = std::thread::spawn(move || {
            let context = glib::MainContext::new();
            let main_loop = glib::MainLoop::new(Some(&context), false);
            let server = RTSPServer::new();
            server.set_address("127.0.0.1");
            server.set_service(&port.to_string());
            let factory = RTSPMediaFactory::new();
            factory.set_launch(&launch);
            factory.set_shared(false);
            server.mount_points().expect("mount points").add_factory("/lane", factory);
            let source = server.attach(Some(&context)).expect("the server binds 127.0.0.1");
            sender.send((server.bound_port() as u16, server.clone(), main_loop.clone())).expect("test waits");
            main_loop.run();
            if let Some(source) = context.find_source_by_id(&source) {
                source.destroy();
            }
            while context.iteration(false) {}
        });
        let (port, server, main_loop) = receiver.recv().expect("the server starts");
        RtspServer { port, server, main_loop, thread: Some(thread) }
    }

    /// Disconnects every client and closes the listening socket.
    pub fn stop(mut self) {
        self.server.client_filter(Some(&mut |_: &RTSPServer, _: &RTSPClient| RTSPFilterResult::Remove));
        self.main_loop.quit();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread ends");
        }
    }
}
