package mapping

import (
	"net/url"
	"path"
	"strings"

	"github.com/lempgw/lempgw/bridge"
)

// mediaKinds maps lower-case file extensions to LEMP message types.
var mediaKinds = map[string]string{
	".jpg": bridge.TypePhoto, ".jpeg": bridge.TypePhoto, ".png": bridge.TypePhoto,
	".gif": bridge.TypePhoto, ".webp": bridge.TypePhoto, ".heic": bridge.TypePhoto,
	".heif": bridge.TypePhoto, ".avif": bridge.TypePhoto, ".bmp": bridge.TypePhoto,

	".mp4": bridge.TypeVideo, ".webm": bridge.TypeVideo, ".mov": bridge.TypeVideo,
	".mkv": bridge.TypeVideo, ".m4v": bridge.TypeVideo, ".3gp": bridge.TypeVideo,
	".avi": bridge.TypeVideo,

	".mp3": bridge.TypeAudio, ".ogg": bridge.TypeAudio, ".oga": bridge.TypeAudio,
	".opus": bridge.TypeAudio, ".m4a": bridge.TypeAudio, ".aac": bridge.TypeAudio,
	".wav": bridge.TypeAudio, ".flac": bridge.TypeAudio, ".amr": bridge.TypeAudio,
}

// MediaType returns the LEMP type (p, v or a) of a file shared by URL: from
// the media type of a data: URL, else from the file extension of the URL's
// path, else p (photo), as mapping.md says.
func MediaType(rawURL string) string {
	if len(rawURL) > 5 && strings.EqualFold(rawURL[:5], "data:") {
		mt := rawURL[5:]
		if i := strings.IndexAny(mt, ";,"); i >= 0 {
			mt = mt[:i]
		}
		if t := typeOfMIME(mt); t != "" {
			return t
		}
		return bridge.TypePhoto
	}
	p := rawURL
	if u, err := url.Parse(rawURL); err == nil && u.Path != "" {
		p = u.Path
	} else if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if t, ok := mediaKinds[strings.ToLower(path.Ext(p))]; ok {
		return t
	}
	return bridge.TypePhoto
}

// typeOfMIME returns the LEMP type of a media type, "" when it is none of
// image, video, audio.
func typeOfMIME(mt string) string {
	major, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(mt)), "/")
	switch major {
	case "image":
		return bridge.TypePhoto
	case "video":
		return bridge.TypeVideo
	case "audio":
		return bridge.TypeAudio
	}
	return ""
}
