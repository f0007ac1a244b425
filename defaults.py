"""Every default of the package, in one place: the library's keyword arguments, the
`dns` command's options and the service's parameters all read them from here.

Constants only: nothing here imports torch, Milvus or anything else, so every layer may
read it.
"""

# --- the networks (DnS, IJCV 2022)
REGIONS = 9               # region vectors per frame (3x3 regional max pooling)
DIMS = 512                # dimensions of a region vector after PCA
COARSE_DIMS = 1024        # the coarse-grained student's video vector
FRAME_SIZE = 256          # frames are resized (short side) and centre-cropped to this

# --- extraction
BATCH_SIZE = 32           # frames through the feature extractor at a time
PRECISION = 'fp32'        # parity with the published numbers; 'bf16' is 2x faster on CPUs with AVX-512 BF16
TIME_STEP = 1.0           # seconds between sampled frames
PREFETCH_BATCHES = 2      # batches of frames decoded ahead of the network (a thread)
CROP_BATCH = 32           # frames resized at a time while decoding: memory stays flat
# FFmpeg scaling kept frames while converting: faster, but region vectors at cosine 0.99
# of the published pipeline's resize; off, so indexes keep the published numbers.
DECODER_SCALES = False
# Constant black borders (letterbox, pillarbox) found per video and cut before the
# extractor, for indexed videos, queries and uploads alike (video_decode.find_borders).
CROP_BORDERS = True

# --- an index
INDEX_FOLDER = 'dns-index'
FINE_STUDENT = 'att'                           # 'att' or 'bin'
FINE_DTYPE = {'att': 'float16', 'bin': 'bits'}  # how fine features are stored
THUMBNAILS = 4                                 # review thumbnails per video
SYNC_EVERY_S = 30.0   # an indexing run syncs Milvus this often (and at its end): searches beside it see its videos

# --- search
K = 10                    # results shown
RERANK = 0.1              # fraction of the candidates the fine student re-ranks
CANDIDATES = 1000         # nearest videos by coarse similarity the selector considers
CLIPS = True              # candidates from clip hits too (a short clip inside a long video)
NEIGHBOURS = 100          # dedup: nearest videos considered per video
DEDUP_RERANK = 1.0        # dedup: fraction of each video's neighbours re-ranked
DEDUP_BLOCK = 2 ** 24     # dedup: coarse similarities computed at once (videos x videos) when finding neighbours
# Clip search: a query takes a window at every sampled frame up to this many windows (a
# minute at 1 frame/s); a longer one spreads this many evenly over its length, so its
# search costs what a minute's does (retrieval/storage/clip_windows.py: WindowSpec.query_stride).
QUERY_WINDOWS = 60
# The clip windows on the embedded default (files of the index folder searched with faiss,
# retrieval/storage/clip_window_files.py): exact (FLAT) while they are fewer than this,
# from then on an HNSW graph over 8-bit codes, made once when the store grows past the
# point (on Milvus Lite, which held them before, the same HNSW parameters).
# Measured by benchmarks/scale.py (docs/scaling.md).
CLIP_HNSW_FROM = 10_000
CLIP_HNSW_BUILD = {'M': 16, 'efConstruction': 128}
CLIP_HNSW_SEARCH = {'ef': 64}
# Windows added beside the graph are searched exactly until there are this many; then a
# flush adds them to the graph and writes it (so adding a video does not rewrite it).
CLIP_TAIL_LIMIT = 20_000
# The share of removed windows at which a flush makes the graph again from the live ones.
CLIP_COMPACT_DEAD = 0.25

# --- where copies start (the defaults; `dns evaluate --calibrate` stores measured ones)
COPY_THRESHOLD = 0.75     # a pair's search score: a fine similarity of 0.5 (s/2 + 0.5)
# A copied segment's score: standard deviations above its pair's background (see
# localization/background.py), less what chance reaches in a pair of its size
# (localization/alignment.py). Set against backgrounds alone: 1 in 100 simulated unrelated
# 1-minute pairs whose neighbouring frames look alike has a segment scoring more
# (benchmarks/localization.py prints it); within the best F1 of the tuning corpus (1.4 to 3).
SEGMENT_THRESHOLD = 2.6
# The unit of segment scores. A threshold calibrated in another unit is kept in the index
# but not used: the index's segment threshold is the default until it is calibrated again.
# 'robust-z' (no size offset) came before this one.
SEGMENT_SCALE = 'robust-z-size'
# Segments measured against the library too (localization/background.py; `--segment-background`):
# this many other indexed videos, drawn at random, give each frame its library level; those
# the fine student judges copies of the frame's video are left out. Off by default: it
# stops look-alikes making segments, but also a piece that three of them hold.
SEGMENT_BACKGROUND = False
BACKGROUND_VIDEOS = 32

# --- the service
HOST = '127.0.0.1'        # loopback only unless asked, and then with a token
PORT = 8000
MAX_UPLOAD_MB = 200.0
MAX_QUERY_SECONDS = 900   # an uploaded query is decoded only this far
MAX_IN_FLIGHT = 64        # requests in the service at once; one more: 503 with Retry-After
UPLOAD_WORKERS = 2        # processes that decode and represent uploads (at most one a core)
UPLOAD_QUEUE_PER_WORKER = 2   # uploads waiting for a worker, per worker, before 503
WORKER_TIMEOUT_S = 600.0  # the longest one upload may take in its worker (then 504)
WORKER_MEMORY_MB = 2048.0  # address space one upload may take in its worker beyond the models
INDEX_SLOTS_PER_CORE = 2  # requests using the index at once, per core (measured: docs/service.md)
LITE_IDLE_RELEASE_S = 2.0  # Milvus Lite let go after this long without a request (`dns index` beside)
SCORED_SETTINGS_KEPT = 4  # settings of /duplicates whose searches are kept
SEGMENT_THUMBNAILS_KEPT = 2000  # thumbnails at segment times kept made (some 5 KB each)

# --- files the `dns` command writes
EVALUATE_PLOT = 'dns-evaluate.png'
SHOW_PLOT = 'dns-show.png'
